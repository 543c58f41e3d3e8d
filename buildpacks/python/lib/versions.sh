# shellcheck shell=bash
# Choosing among the host's runtimes: the same file in every bundled buildpack that reads a
# version (a buildpack is copied alone, so each carries it; a unit test keeps the copies
# equal). A runtime is a line "version<TAB>path<TAB>where found", lists are newest first.

# The home folder of the user running the build (HOME is the app's during a build), read
# without a process: detect runs on every deploy.
host_home() {
  local name x uid gid gecos home shell
  while IFS=: read -r name x uid gid gecos home shell; do
    if [ "$uid" = "$EUID" ]; then
      echo "$home"
      return
    fi
  done </etc/passwd
  getent passwd "$EUID" 2>/dev/null | cut -d: -f6
}

# Sorts runtime lines newest first, one line a version.
vs_sort() {
  sort -t. -k1,1nr -k2,2nr -k3,3nr -s | awk -F'\t' '!seen[$1]++'
}

# The runtime for a request, from the lines on stdin: a full X.Y.Z only itself, a shorter
# X or X.Y the newest of that line. Prints the line, or nothing.
vs_match() {
  awk -F'\t' -v a="$1" '$1 == a || index($1, a ".") == 1 { print; exit }'
}

# The nearest of the lines on stdin to a request: smallest distance in major, then minor,
# then patch; the newer on a tie.
vs_nearest() {
  awk -F'\t' -v a="$1" '
    BEGIN { n = split(a, w, "."); for (i = n + 1; i <= 3; i++) w[i] = 999 }
    { split($1, v, "."); d = (v[1] - w[1]) * 1000000 + (v[2] - w[2]) * 1000 + (v[3] - w[3]); if (d < 0) d = -d + 0.5
      if (best == "" || d < bd) { best = $0; bd = d } }
    END { if (best != "") print best }'
}

# "1.2.3 (where), ..." from the lines on stdin, oldest first; "none" for no line.
vs_list() {
  awk -F'\t' 'NF { l[++n] = $1 " (" $3 ")" } END { if (!n) printf "none"; for (i = n; i >= 1; i--) printf "%s%s", l[i], (i > 1 ? ", " : "") }'
}
