greet() { echo "hello from the lab app ($(head -n 1 /app/greet/lib.txt))"; }
