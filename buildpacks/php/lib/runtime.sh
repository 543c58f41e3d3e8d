# shellcheck shell=bash
# The PHP an app asks for, as Scalingo's php-buildpack reads it (bin/compile there), and
# the host's PHPs: sourced by bin/detect and bin/compile. Upstream: composer.json's
# require.php, else config.platform.php, else extra.paas.engines.php (extra.heroku when
# that key exists), else the PHP_VERSION config var, else its default; a Composer
# constraint, resolved to the newest PHP that satisfies it.

# A value of composer.json by a path of keys ("require php"): jq, else any Python, else php.
composer_get() {
  local file=$1
  shift
  if command -v jq >/dev/null; then
    local path
    path=$(printf '[%s]' "$(printf '"%s",' "$@" | sed 's/,$//')")
    jq -r --argjson p "$path" 'getpath($p) // "" | if type == "string" then . else "" end' "$file" 2>/dev/null
  elif command -v python3 >/dev/null; then
    python3 -I -S -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v.get(k) if isinstance(v, dict) else None
print(v if isinstance(v, str) else "")' "$file" "$@" 2>/dev/null
  elif command -v php >/dev/null; then
    php -r '$v = json_decode(file_get_contents($argv[1]), true); foreach (array_slice($argv, 2) as $k) { $v = is_array($v) && isset($v[$k]) ? $v[$k] : null; } echo is_string($v) ? $v : "";' "$file" "$@"
  fi
}

# Sets PHP_ASKED (a constraint) and PHP_ORIGIN; $2: the PHP_VERSION config var.
php_requested() {
  local file=$1/composer.json configured=${2:-} extra=paas v
  PHP_ASKED= PHP_ORIGIN=
  if [ -f "$file" ]; then
    if grep -q '"heroku"[[:space:]]*:' "$file"; then extra=heroku; fi
    for key in "require php" "config platform php" "extra $extra engines php"; do
      # shellcheck disable=SC2086 # the keys are words
      v=$(composer_get "$file" $key || true)
      if [ -n "$v" ]; then
        PHP_ASKED=$v PHP_ORIGIN="composer.json ${key// /.}"
        return
      fi
    done
  fi
  if [ -n "$configured" ]; then
    PHP_ASKED=$configured PHP_ORIGIN="PHP_VERSION config var"
  else
    PHP_ASKED="*" PHP_ORIGIN="nothing asked: the platform's default, its newest PHP"
  fi
}

# Whether a version (X.Y.Z) satisfies a Composer constraint: ||, and/or space or comma
# separated ranges of ^, ~, >=, >, <=, <, =, !=, X.Y.*, *, and bare versions.
php_satisfies() {
  # An operator and its version may be apart (">= 8.1"): joined first.
  awk -v v="$1" -v c="$(sed -E 's/(>=|<=|!=|==|>|<|=|\^|~)[[:space:]]+/\1/g' <<<"$2")" '
    function cmp(a, b,   x, y, i) { split(a, x, "."); split(b, y, "."); for (i = 1; i <= 3; i++) { if (x[i] + 0 < y[i] + 0) return -1; if (x[i] + 0 > y[i] + 0) return 1 } return 0 }
    function parts(s) { return split(s, tmp, ".") }
    function bump(s, n,   x, k) { k = split(s, x, "."); if (n == 1) return (x[1] + 1) ".0.0"; return x[1] "." (x[2] + 1) ".0" }
    function one(r,   op, ver, n) {
      if (r == "*" || r == "") return 1
      sub(/^v/, "", r); match(r, /^(\^|~|>=|<=|!=|==|>|<|=)?/); op = substr(r, 1, RLENGTH); ver = substr(r, RLENGTH + 1); sub(/^v/, "", ver)
      sub(/@.*/, "", ver)
      if (ver ~ /\.\*$/ || ver ~ /\.x$/) { sub(/\.[*x]$/, "", ver); n = parts(ver); return cmp(v, ver ".0.0") >= 0 && cmp(v, bump(ver (n == 1 ? "" : ".0"), n)) < 0 }
      n = parts(ver)
      if (op == "^") return cmp(v, ver) >= 0 && cmp(v, bump(ver, 1)) < 0
      if (op == "~") return cmp(v, ver) >= 0 && cmp(v, bump(ver, n == 1 ? 1 : n - 1)) < 0
      if (op == ">=") return cmp(v, ver) >= 0
      if (op == ">") return cmp(v, ver) > 0
      if (op == "<=") return cmp(v, ver) <= 0
      if (op == "<") return cmp(v, ver) < 0
      if (op == "!=") return cmp(v, ver) != 0
      if (n < 3) return cmp(v, ver) >= 0 && cmp(v, bump(ver, n)) < 0
      return cmp(v, ver) == 0
    }
    BEGIN {
      gsub(/\|\|/, "|", c); na = split(c, alts, "|")
      for (a = 1; a <= na; a++) {
        s = alts[a]; gsub(/,/, " ", s)
        nr = split(s, rs, " "); ok = 1
        for (i = 1; i <= nr; i++) if (!one(rs[i])) { ok = 0; break }
        if (ok) exit 0
      }
      exit 1
    }'
}

# Every PHP of this host, "version<TAB>bin folder<TAB>where".
php_host_phps() {
  local home p v where lines=() seen=" " real dir
  home=$(host_home)
  local IFS=:
  for dir in $PATH; do
    [[ $dir == */shims ]] && continue
    for p in "$dir"/php "$dir"/php[5-9].[0-9]; do
      [ -x "$p" ] || continue
      real=$(readlink -f "$p") && [[ $seen != *" $real "* ]] || continue
      seen+="$real "
      v=$("$p" -n -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION, ".", PHP_RELEASE_VERSION;' 2>/dev/null) || continue
      lines+=("$v	$p	PATH")
    done
  done
  unset IFS
  for p in "${ASDF_DATA_DIR:-$home/.asdf}"/installs/php/*/bin/php "${MISE_DATA_DIR:-$home/.local/share/mise}"/installs/php/*/bin/php "$home"/.phpenv/versions/*/bin/php; do
    v=${p%/bin/php} v=${v##*/}
    case $p in */mise/*) where=mise ;; */.phpenv/*) where=phpenv ;; *) where=asdf ;; esac
    [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && [ -x "$p" ] && lines+=("$v	$p	$where")
  done
  if [ ${#lines[@]} -gt 0 ]; then printf '%s\n' "${lines[@]}" | vs_sort; fi
}

# The newest line on stdin whose version satisfies the constraint.
php_match() {
  local line v
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    v=${line%%	*}
    if php_satisfies "$v" "$1"; then
      echo "$line"
      return
    fi
  done
}

# The line nearest to the first version a constraint names (">=8.2 <8.5": 8.2), for
# SHIPWAY_NEAREST_VERSION; the newest for a constraint that names none ("*").
php_nearest() {
  local first
  first=$(grep -oE '[0-9]+(\.[0-9]+){0,2}' <<<"$1" | head -n 1)
  if [ -n "$first" ]; then vs_nearest "$first"; else head -n 1; fi
}

PHP_INSTALL_HINT="sudo apt-get install php-cli (Debian's PHP), or mise install php@<version>"
