# shellcheck shell=bash
# What Python an app asks for, and which of the host's Pythons serve it: sourced by
# bin/detect (to say so) and bin/compile (to use it). The rules are those of Scalingo's
# python-buildpack (lib/python_version.sh, lib/package_manager.sh), read there, not copied.

# The platform's buildpack: the versions it knows, its default, and the tools it pins
# (its requirements/*.txt). Kept in step with the official buildpack by hand.
PY_OLDEST_MINOR=10
PY_NEWEST_MINOR=14
PY_DEFAULT=3.13
declare -A PY_LATEST=([3.10]=3.10.20 [3.11]=3.11.15 [3.12]=3.12.13 [3.13]=3.13.14 [3.14]=3.14.6)
PIP_PIN=26.1.2
SETUPTOOLS_PIN=70.3.0
PIPENV_PIN=2026.6.2
POETRY_PIN=2.4.1
UV_PIN=0.11.28

# The lines of a version file that say something: comments, blanks and spaces dropped.
py_meaningful_lines() {
  sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//; /^(#|$)/d' "$1"
}

# The package manager, as upstream picks it: exactly one of Pipfile.lock, requirements.txt,
# poetry.lock, uv.lock. Prints "name<TAB>file", or "error<TAB>why" (compile fails with it).
py_package_manager() {
  local dir=$1 found=()
  if [ -f "$dir/Pipfile.lock" ]; then
    found+=("pipenv	Pipfile.lock")
  elif [ -f "$dir/Pipfile" ]; then
    printf 'error\tA Pipfile was found without its Pipfile.lock: the platform no longer installs unpinned Pipfiles. Run `pipenv lock` and commit Pipfile.lock.\n'
    return
  fi
  [ -f "$dir/requirements.txt" ] && found+=("pip	requirements.txt")
  [ -f "$dir/poetry.lock" ] && found+=("poetry	poetry.lock")
  [ -f "$dir/uv.lock" ] && found+=("uv	uv.lock")
  case ${#found[@]} in
    1) printf '%s\n' "${found[0]}" ;;
    0)
      if [ -f "$dir/pyproject.toml" ]; then
        printf 'error\tpyproject.toml alone names no package manager the platform uses: add its lock file (`uv lock` for uv.lock, `poetry lock` for poetry.lock) or a requirements.txt.\n'
      elif [ -f "$dir/setup.py" ]; then
        printf "error\tsetup.py alone is no longer installed by the platform: add a requirements.txt containing '--editable .'.\n"
      else
        printf 'error\tNo Python package manager file: the platform needs a requirements.txt, Pipfile.lock, poetry.lock or uv.lock (an empty requirements.txt for an app without dependencies).\n'
      fi
      ;;
    *) printf 'error\tSeveral package manager files (%s): the platform refuses to guess; keep one.\n' "$(printf '%s, ' "${found[@]#*	}" | sed 's/, $//')" ;;
  esac
}

# The version asked and where it comes from, upstream's order: runtime.txt, .python-version,
# Pipfile.lock's python_full_version then python_version, the last build's major (cached),
# the platform's default. Sets PY_ASKED and PY_ORIGIN, or PY_ERROR.
py_requested() {
  local dir=$1 manager=$2 cached=$3 line lines
  PY_ASKED= PY_ORIGIN= PY_ERROR=
  if [ -f "$dir/runtime.txt" ]; then
    line=$(py_meaningful_lines "$dir/runtime.txt" | tr '\n' ' ' | sed 's/ $//')
    if [[ $line =~ ^python-([0-9]+\.[0-9]+(\.[0-9]+)?)$ ]]; then
      PY_ASKED=${BASH_REMATCH[1]} PY_ORIGIN=runtime.txt
    else
      PY_ERROR="runtime.txt must read python-3.N or python-3.N.N (it is deprecated: prefer a .python-version file holding 3.N)"
    fi
    if [ "$manager" = uv ]; then
      PY_ERROR="runtime.txt is not supported with uv: delete it and run \`uv python pin 3.N\` (a .python-version file)"
    fi
    return
  fi
  if [ -f "$dir/.python-version" ]; then
    mapfile -t lines < <(py_meaningful_lines "$dir/.python-version")
    if [ ${#lines[@]} -ne 1 ]; then
      PY_ERROR=".python-version must hold exactly one version (it holds ${#lines[@]}), such as $PY_DEFAULT"
    elif [[ ${lines[0]} =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then
      PY_ASKED=${lines[0]} PY_ORIGIN=.python-version
    else
      PY_ERROR=".python-version holds '${lines[0]}': it must be a version such as $PY_DEFAULT or $PY_DEFAULT.1 (no 'python-' prefix, no wildcard)"
    fi
    return
  fi
  if [ "$manager" = pipenv ]; then
    line=$(py_pipfile_lock_version "$dir/Pipfile.lock")
    if [ -n "$line" ]; then
      if [[ $line =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then
        PY_ASKED=$line PY_ORIGIN=Pipfile.lock
      else
        PY_ERROR="Pipfile.lock asks for Python '$line': it must be 3.N or 3.N.N"
      fi
      return
    fi
  fi
  if [ "$manager" = uv ]; then
    PY_ERROR="with uv the platform requires a .python-version file: run \`uv python pin $PY_DEFAULT\` (your major version) and commit it"
    return
  fi
  if [[ $cached =~ ^([0-9]+\.[0-9]+)\.[0-9]+$ ]]; then
    PY_ASKED=${BASH_REMATCH[1]} PY_ORIGIN=cached
  else
    PY_ASKED=$PY_DEFAULT PY_ORIGIN=default
  fi
}

# Pipfile.lock's _meta.requires: python_full_version, else python_version (pipenv writes
# them from the Pipfile's [requires]). Any Python reads JSON; without one, nothing is read.
py_pipfile_lock_version() {
  local reader
  reader=$(command -v python3 || true)
  [ -n "$reader" ] || return 0
  "$reader" -I -S -c '
import json, sys
try:
    req = json.load(open(sys.argv[1])).get("_meta", {}).get("requires", {})
except Exception as e:
    print("unreadable JSON: %s" % e); sys.exit()
print(req.get("python_full_version") or req.get("python_version") or "")
' "$1" 2>/dev/null
}

# uv's requires-python (pyproject.toml), shown beside the version asked: uv itself refuses
# an interpreter outside it.
py_requires_python() {
  [ -f "$1/pyproject.toml" ] || return 0
  sed -nE 's/^[[:space:]]*requires-python[[:space:]]*=[[:space:]]*["'\'']([^"'\'']*)["'\''].*/\1/p' "$1/pyproject.toml" | head -n 1
}

# Whether the platform knows a version: an error sentence when it does not.
py_known() {
  local major=${1%%.*} rest=${1#*.} minor
  minor=${rest%%.*}
  if ((major < 3 || (major == 3 && minor < PY_OLDEST_MINOR))); then
    echo "Python $major.$minor has reached its end of life: the platform's buildpack refuses it (3.$PY_OLDEST_MINOR to 3.$PY_NEWEST_MINOR)"
  elif ((major > 3 || minor > PY_NEWEST_MINOR)); then
    echo "Python $major.$minor is not a version the platform's buildpack knows (3.$PY_OLDEST_MINOR to 3.$PY_NEWEST_MINOR): it fails there too"
  fi
}

# Every CPython 3 this host has, one "version<TAB>path<TAB>where" a line, newest first,
# one line a version. Install folders are named by version; binaries on PATH are asked
# (shims of pyenv, asdf, mise and rbenv are left out: the folders behind them are read).
py_host_interpreters() {
  local extra=${1:-} home dir p v where seen=" " lines=()
  home=$(host_home)
  for p in "${PYENV_ROOT:-$home/.pyenv}"/versions/*/bin/python3 \
    "${ASDF_DATA_DIR:-$home/.asdf}"/installs/python/*/bin/python3 \
    "${MISE_DATA_DIR:-$home/.local/share/mise}"/installs/python/*/bin/python3; do
    v=${p%/bin/python3} v=${v##*/}
    case $p in */.pyenv/* | "${PYENV_ROOT:-/nonexistent}"/*) where=pyenv ;; */mise/*) where=mise ;; *) where=asdf ;; esac
    [[ $v =~ ^3\.[0-9]+\.[0-9]+$ ]] && [ -x "$p" ] && lines+=("$v	$p	$where")
  done
  for dir in "${UV_PYTHON_INSTALL_DIR:-$home/.local/share/uv/python}" $extra; do
    for p in "$dir"/cpython-3.*-linux-*/bin/python3; do
      v=${p%/bin/python3} v=${v##*/cpython-} v=${v%%[-+]*}
      where=uv
      [ "$dir" = "$extra" ] && where="uv, in the build cache"
      [[ $v =~ ^3\.[0-9]+\.[0-9]+$ ]] && [ -x "$p" ] && lines+=("$v	$p	$where")
    done
  done
  local IFS=: real
  for dir in $PATH; do
    [[ $dir == */shims ]] && continue
    for p in "$dir"/python3 "$dir"/python3.[0-9] "$dir"/python3.[0-9][0-9]; do
      [ -x "$p" ] || continue
      real=$(readlink -f "$p") || continue
      [[ $seen == *" $real "* ]] && continue
      seen+="$real "
      v=$("$p" -I -S -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || continue
      lines+=("$v	$p	PATH")
    done
  done
  unset IFS
  if [ ${#lines[@]} -gt 0 ]; then printf '%s\n' "${lines[@]}" | vs_sort; fi
}

# The command that installs a version on this host: the version manager it has, else uv.
py_install_hint() {
  local v=$1 home
  home=$(host_home)
  if [ -d "${PYENV_ROOT:-$home/.pyenv}" ]; then
    echo "pyenv install $v"
  elif [ -d "${MISE_DATA_DIR:-$home/.local/share/mise}" ]; then
    echo "mise install python@$v"
  elif [ -d "${ASDF_DATA_DIR:-$home/.asdf}" ]; then
    echo "asdf install python $v"
  else
    echo "uv python install $v"
  fi
}
