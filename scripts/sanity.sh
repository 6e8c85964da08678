#!/usr/bin/env bash
# ansible-test sanity for the smcp.platform collection; exits non-zero on any sanity error.
#
# How and why:
# - ansible-test needs the collection at a path whose realpath is .../ansible_collections/smcp/platform/
#   and lists files with git. The repository root is neither, so the collection content (git-tracked and
#   untracked-not-ignored files of galaxy.yml, meta/, plugins/, roles/, playbooks/, docs, README, LICENSE)
#   is copied to .cache/ansible-test/ansible_collections/smcp/platform, given a throwaway git index there,
#   and tested in place. tests/, api/, scripts/ and extensions/ are not collection content under test here
#   (pytest, ruff and molecule cover them).
# - Tools: ansible-test (from .venv, same ansible-core) runs each sanity test in its own virtualenv under
#   ~/.ansible/test/venv with its own pinned tools (pylint, voluptuous, pycodestyle, yamllint, ...) from PyPI,
#   and bootstraps pip in them with a script from ci-files.testing.ansible.com, which is unreachable here.
#   So HOME is pointed at .cache/ansible-test/home (the venvs are cached there: only the first run downloads,
#   ~3.5 min; later runs ~40 s) and a pip bootstrap using the interpreter's ensurepip plus PyPI is placed
#   where ansible-test looks for its cached get-pip copy. The project's .venv is never modified.
# - Tests: every default sanity test on Python 3.11 (the controller; target Pythons other than the
#   controller's are not installed in a form ansible-test can use) except those whose tool does not exist
#   here: pslint (PowerShell), shellcheck (not packaged in the venv), changelog (no antsibull-changelog
#   config in this collection). That includes validate-modules, pylint, pep8, import, compile,
#   ansible-doc, yamllint, runtime-metadata, action-plugin-docs, no-* and shebang checks.
# - Ignores: tests/sanity/ignore-<core major.minor>.txt of the repository (if present) is used, plus
#   generated validate-modules:missing-gplv3-license lines (Apache-2.0 collection, no GPLv3 headers).
# Usage: scripts/sanity.sh [extra ansible-test sanity args, e.g. --test validate-modules]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache/ansible-test
COLL=$CACHE/ansible_collections/smcp/platform
REQS=$("$ROOT/.venv/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_data", "requirements"))')

# 1. pip bootstrap for ansible-test's per-test venvs (stands in for its get-pip download)
export HOME=$CACHE/home
mkdir -p "$HOME/.ansible/test/cache"
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" "$REQS/../../_internal/python_requirements.py" | head -n1)
for v in ${pip_version:-24.2}; do
  cat >"$HOME/.ansible/test/cache/get_pip_${v//./_}.py" <<'EOF'
"""Offline stand-in for get-pip.py: pip from ensurepip, then `pip install --upgrade <args>` from PyPI."""
import ensurepip
import os
import subprocess
import sys

saved = os.environ.get("PIP_CONFIG_FILE")
ensurepip.bootstrap()  # sets PIP_CONFIG_FILE=/dev/null in os.environ; restore pip.conf (proxy CA, index) for PyPI
os.environ.pop("PIP_CONFIG_FILE", None)
if saved is not None:
    os.environ["PIP_CONFIG_FILE"] = saved
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]  # get-pip-only options
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", *args]))
EOF
done

# 2. a fresh copy of the collection content with its own git index
rm -rf "$COLL"
mkdir -p "$COLL"
git ls-files -co --exclude-standard -- galaxy.yml meta plugins roles playbooks docs README.md LICENSE \
  | rsync -a --files-from=- ./ "$COLL/"
# Ignore file: the project's own entries (tests/sanity/ignore-2.19.txt, if any) plus one generated line per
# module for missing-gplv3-license: the collection is Apache-2.0, so modules carry no GPLv3 header.
ignore=$COLL/tests/sanity/ignore-$("$ROOT/.venv/bin/python" -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))').txt
mkdir -p "$(dirname "$ignore")"
{
  [[ -f tests/sanity/$(basename "$ignore") ]] && cat "tests/sanity/$(basename "$ignore")"
  for m in "$COLL"/plugins/modules/*.py; do
    [[ -e $m ]] && echo "plugins/modules/$(basename "$m") validate-modules:missing-gplv3-license"
  done
  true
} >"$ignore"
git -C "$COLL" init -q
git -C "$COLL" add -A

# 3. run
cd "$COLL"
export PATH=$ROOT/.venv/bin:$PATH
exec ansible-test sanity --python 3.11 --color no \
  --skip-test pslint --skip-test shellcheck --skip-test changelog "$@"
