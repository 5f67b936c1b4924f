#!/bin/bash
# RCGC_REF must refuse, at compile time, a field whose offset does not fit the
# uint16_t of a refs entry, and accept one that fits.  Compiles the same
# descriptor twice: the field below byte 65536 (must compile), then beyond it
# (must fail with RCGC_REF's message, not for any other reason).
# Usage: refs_offset_check.sh CC INCLUDE_DIR [CXX]
set -u
cc=$1 inc=$2 cxx=${3:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/t.c" <<'SRC'
#include "rcgc.h"
struct big { rcgc_object ob; rcgc_object *a; char pad[PAD]; rcgc_object *b; };
static const rcgc_type big_type = {
    .name = "big", .size = sizeof(struct big), .refs = RCGC_REFS(struct big, a, b)};
static const uint16_t by_hand[] = {RCGC_REF(struct big, b), 0};
const rcgc_type *big_get(void) { return by_hand[0] ? &big_type : 0; }
SRC
fail=0
if ! "$cc" -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$inc" -DPAD=65000 "$dir/t.c"; then
    echo "FAIL: a field at offset 65016 was refused"; fail=1
fi
if "$cc" -std=c11 -fsyntax-only -I"$inc" -DPAD=65600 "$dir/t.c" 2> "$dir/err"; then
    echo "FAIL: a field beyond byte 65536 compiled"; fail=1
elif ! grep -q 'RCGC_REF: a refs field must lie below byte 65536' "$dir/err"; then
    echo "FAIL: refused without RCGC_REF's message:"; cat "$dir/err"; fail=1
fi
if [ -n "$cxx" ]; then
    printf '%s\n' '#include "rcgc.h"' \
        'struct big { rcgc_object ob; char pad[PAD]; rcgc_object *b; };' \
        'extern const uint16_t r[]; const uint16_t r[] = {RCGC_REF(big, b), 0};' > "$dir/t.cc"
    "$cxx" -fsyntax-only -I"$inc" -DPAD=100 "$dir/t.cc" || { echo "FAIL: C++ near field refused"; fail=1; }
    if "$cxx" -fsyntax-only -I"$inc" -DPAD=65600 "$dir/t.cc" 2>/dev/null; then
        echo "FAIL: C++ field beyond byte 65536 compiled"; fail=1
    fi
else
    echo "no C++ compiler: C++ form not checked"
fi
[ $fail = 0 ] && echo "ok: RCGC_REF accepts offsets below 65536 and refuses the rest at compile time"
exit $fail
