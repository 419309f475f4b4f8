#!/bin/bash
# Times `ecir scan -j1` on a scaling generator's output at several sizes.
# usage: benches/scaling/run.sh GENERATOR.py N [N...]   (ECIR=path/to/ecir, default target/release/ecir;
#        SCALING_DATA=dir for the generated logs, default /tmp/ecir-scaling; EXTRA=generator's 2nd argument)
set -e
here=$(cd "$(dirname "$0")" && pwd)
ecir=${ECIR:-$here/../../target/release/ecir}
export SCALING_DATA=${SCALING_DATA:-/tmp/ecir-scaling}
gen=$1; shift
for n in "$@"; do
  python3 "$here/$gen" "$n" $EXTRA >/dev/null
  # The generator's own directory (named after it, and after EXTRA when given).
  name=$(basename "$gen" .py)
  out="$SCALING_DATA/$name-$n"
  if [ -n "$EXTRA" ] && [ -d "$SCALING_DATA/${name}_$EXTRA-$n" ]; then out="$SCALING_DATA/${name}_$EXTRA-$n"; fi
  lines=$(cat "$out"/* | wc -l)
  /usr/bin/time -f "$(basename "$gen" .py) N=$n lines=$lines: %e s wall, %U s user, %M KiB peak RSS" \
    timeout 300 "$ecir" scan --quiet --fail-on never -j1 --json /dev/null "$out" >/dev/null
done
