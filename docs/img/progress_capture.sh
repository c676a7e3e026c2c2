#!/usr/bin/env bash
# Records docs/img/progress_capture.txt: liftlab's progress on a terminal (tmux) and piped.
# Run from the repository root (with the venv active): bash docs/img/progress_capture.sh
set -euo pipefail
out=$PWD/docs/img/progress_capture.txt
work=$(mktemp -d)
mkdir -p "$work/bin"
# `liftlab` in tmux's shell and here: this tree's code, with CI unset so the terminal rule decides.
cat > "$work/bin/liftlab" <<WRAP
#!/bin/sh
exec env -u CI PYTHONPATH=$PWD $(command -v liftlab) "\$@"
WRAP
chmod +x "$work/bin/liftlab"
export PATH="$work/bin:$PATH"
cd "$work"
T="tmux -L liftlab_rec"
liftlab simulate --out sim --geos 30 --days 500 > /dev/null
snap() {  # $1: title; the pane's non-empty lines
  echo "---- $1 ----" >> "$out"
  $T capture-pane -p -t rec | sed '/^$/d' >> "$out"
}
wait_for() {  # $1: text to wait for in the pane, $2: at most this many half-seconds
  for _ in $(seq "$2"); do $T capture-pane -p -t rec | grep -q -- "$1" && return 0; sleep 0.5; done
}
echo "liftlab progress, recorded with tmux (a terminal: bars on stderr) and piped (no bars)" > "$out"
$T kill-server 2>/dev/null || true
$T new-session -d -s rec -x 110 -y 30 -c "$work"
$T send-keys -t rec "export PATH=$work/bin:\$PATH PS1='\$ '; clear" Enter
sleep 1
$T send-keys -t rec "liftlab calibrate --data sim/panel.csv --out c.json --draws 50 --report c.html" Enter
wait_for "calibrate:" 240
sleep 1; snap "terminal: liftlab calibrate, while it runs (a bar over its steps)"
wait_for "calibrated" 600
snap "terminal: liftlab calibrate, done (the bar is cleared)"
$T send-keys -t rec "clear; liftlab demo --out demo" Enter
wait_for "screening" 240
sleep 2; snap "terminal: liftlab demo, step headers and the design search's bar"
wait_for "report figures" 1200
$T send-keys -t rec "clear" Enter
$T kill-server
echo "---- piped: liftlab calibrate ... 2>&1 | cat (no bar) ----" >> "$out"
liftlab calibrate --data sim/panel.csv --out c2.json --draws 50 2>&1 | cat >> "$out"
echo "---- piped: liftlab demo ... 2>&1 | cat, its first 30 s (no step header, no bar) ----" >> "$out"
(timeout 30 liftlab demo --out demo2 2>&1 || true) | cat >> "$out"
echo '(timeout ended it after 30 s: "error: terminated" is its answer to SIGTERM; no step header or bar came before it)' >> "$out"
cd / && rm -rf "$work"
