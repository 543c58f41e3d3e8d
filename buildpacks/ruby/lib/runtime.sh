# shellcheck shell=bash
# The Ruby an app asks for, as Scalingo's ruby-buildpack reads it, and the host's Rubies:
# sourced by bin/detect (to say so) and bin/compile (to use it). Upstream takes the
# version from Gemfile.lock's RUBY VERSION (which `bundle lock` writes from the Gemfile's
# `ruby` line, itself maybe `ruby file: ".ruby-version"`), else the last build's, else its
# default; .ruby-version alone is read but not used there, so not here either.

RUBY_DEFAULT=3.3.9

# Sets RB_ASKED and RB_ORIGIN, or RB_ERROR.
rb_requested() {
  local dir=$1 cached=${2:-}
  RB_ASKED= RB_ORIGIN= RB_ERROR=
  if [ ! -f "$dir/Gemfile.lock" ]; then
    RB_ERROR="Gemfile.lock required. Please check it in. (the platform refuses a Gemfile without it: run \`bundle lock\`)"
    return
  fi
  RB_ASKED=$(awk '/^RUBY VERSION/ { getline; if ($1 == "ruby") { sub(/p[0-9]+$/, "", $2); print $2 }; exit }' "$dir/Gemfile.lock")
  if [ -n "$RB_ASKED" ]; then
    RB_ORIGIN="Gemfile.lock"
  elif [[ $cached =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    RB_ASKED=$cached RB_ORIGIN=cached
  else
    RB_ASKED=$RUBY_DEFAULT RB_ORIGIN=default
  fi
}

# What else names a version, for the user: the Gemfile's `ruby` line and .ruby-version.
rb_other_sources() {
  local dir=$1 line
  line=$(sed -nE 's/^[[:space:]]*ruby[[:space:]]*\(?[[:space:]]*(["'\''][^"'\'']+["'\'']|file:[^)#]*).*/\1/p' "$dir/Gemfile" 2>/dev/null | head -n 1)
  [ -n "$line" ] && echo "Gemfile: ruby ${line//[\"\']/}"
  if [ -f "$dir/.ruby-version" ]; then
    echo ".ruby-version: $(sed -E 's/#.*//; s/^[[:space:]]+//; s/[[:space:]]+$//; /^$/d; s/^ruby-//' "$dir/.ruby-version" | head -n 1)"
  fi
}

# Every Ruby of this host, "version<TAB>bin folder<TAB>where", newest first, one a version.
rb_host_rubies() {
  local home p v where lines=() seen=" " real
  home=$(host_home)
  for p in "${RBENV_ROOT:-$home/.rbenv}"/versions/*/bin/ruby \
    "${ASDF_DATA_DIR:-$home/.asdf}"/installs/ruby/*/bin/ruby \
    "${MISE_DATA_DIR:-$home/.local/share/mise}"/installs/ruby/*/bin/ruby \
    "$home"/.rubies/ruby-*/bin/ruby /opt/rubies/ruby-*/bin/ruby; do
    v=${p%/bin/ruby} v=${v##*/} v=${v#ruby-}
    case $p in */.rbenv/*) where=rbenv ;; */asdf/* | */.asdf/*) where=asdf ;; */mise/*) where=mise ;; *) where=chruby ;; esac
    [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && [ -x "$p" ] && lines+=("$v	${p%/ruby}	$where")
  done
  local IFS=: dir
  for dir in $PATH; do
    [[ $dir == */shims ]] && continue
    p=$dir/ruby
    [ -x "$p" ] || continue
    real=$(readlink -f "$p") || continue
    [[ $seen == *" $real "* ]] && continue
    seen+="$real "
    v=$("$p" -e 'print RUBY_VERSION' 2>/dev/null) || continue
    lines+=("$v	$dir	PATH")
  done
  unset IFS
  if [ ${#lines[@]} -gt 0 ]; then printf '%s\n' "${lines[@]}" | vs_sort; fi
}

rb_install_hint() {
  local home
  home=$(host_home)
  if [ -d "${RBENV_ROOT:-$home/.rbenv}" ]; then
    echo "rbenv install $1"
  elif [ -d "${MISE_DATA_DIR:-$home/.local/share/mise}" ]; then
    echo "mise install ruby@$1"
  elif [ -d "${ASDF_DATA_DIR:-$home/.asdf}" ]; then
    echo "asdf install ruby $1"
  else
    echo "rbenv install $1 (https://github.com/rbenv/rbenv), or mise install ruby@$1"
  fi
}
