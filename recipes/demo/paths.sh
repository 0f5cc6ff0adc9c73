# Sourced by the stage scripts: where the recipes and the plugin are, both in a checkout
# (this folder is recipes/demo/) and in an installed wheel (xlsr_demo/recipes/demo/), and
# `show`, which runs every command the scripts run.
# recipes: the folder above this one, holding pretraining/ and finetuning/
recipes=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# plugin: the xlsr_plugin package of the `python` on PATH, for --user-dir (found, not imported)
plugin=$(python -c 'import importlib.util, sys
spec = importlib.util.find_spec("xlsr_plugin")
if spec is None:
    sys.exit("xlsr_plugin is not installed for this python: activate its venv")
print(spec.submodule_search_locations[0])')
# show CMD [ARG...]: print the command, fully expanded and shell-quoted, as one line
# "+ CMD ARG..." on stderr (what `set -x` shows, but copyable: xlsr-demo copies these lines
# into OUT/commands.sh), then run it. show_to FILE CMD...: the same with stdout into FILE.
show() {
  local q
  q=$(printf '%q ' "$@")
  printf '+ %s\n' "${q% }" >&2
  "$@"
}
show_to() {
  local file=$1 q
  shift
  q=$(printf '%q ' "$@")
  printf '+ %s > %q\n' "${q% }" "$file" >&2
  "$@" > "$file"
}
