# "Installs" the dependencies listed in $1 into /opt/deps: each one unpacked from a
# downloaded archive (here, made on the spot), the archive deleted in the same RUN.
set -eu
mkdir -p /opt/deps /tmp/dl
while read -r name version; do
    mkdir -p "/tmp/dl/$name-$version"
    seq 1 20000 | sed "s/^/$name $version /" > "/tmp/dl/$name-$version/lib.txt"
    # fixed times: the same archive, byte for byte, on every build
    touch -t 200001010000 "/tmp/dl/$name-$version/lib.txt" "/tmp/dl/$name-$version"
    tar -C /tmp/dl -czf "/tmp/dl/$name.tar.gz" "$name-$version"
    tar -C /opt/deps -xzf "/tmp/dl/$name.tar.gz"
    echo "installed $name $version"
done < "$1"
rm -rf /tmp/dl
