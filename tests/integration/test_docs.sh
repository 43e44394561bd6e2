#!/usr/bin/env bash
# test_docs.sh -- the README and docs/ link only to files that exist, and the README stays short
# (about 300 lines: the detail lives in docs/).
set -u
. "$(dirname "$0")/lib.sh"

cd "$KG_SOURCE_DIR" || kg_die "no source dir"
bad=""
for f in README.md HACKING.md docs/*.md; do
	dir=$(dirname "$f")
	# markdown links [text](target) that are not URLs or pure anchors
	while IFS= read -r target; do
		path=${target%%#*}
		[ -z "$path" ] && continue
		case "$path" in http://*|https://*|mailto:*) continue ;; esac
		[ -e "$dir/$path" ] || bad="$bad $f->$target"
	done < <(grep -oE '\]\([^) ]+\)' "$f" | sed -E 's/^\]\((.*)\)$/\1/')
done
if [ -z "$bad" ]; then kg_pass "every relative link in README.md, HACKING.md and docs/ resolves"; else kg_fail "broken links:$bad"; fi
n=$(wc -l <README.md)
if [ "$n" -le 320 ]; then kg_pass "README.md has $n lines (at most about 300)"; else kg_fail "README.md has $n lines (the limit is about 300: move detail into docs/)"; fi
kg_finish
