# "Compiles" the application: the sources joined into one script in /app/out, with the
# toolchain (/opt/deps) at hand.
set -eu
mkdir -p out
cat src/*.sh > out/app.sh
cp -r /opt/deps/greet-1.2 out/greet
echo "built out/app.sh ($(wc -l < out/app.sh) lines)"
