# zsh -f tests/cli/zsh_capture.zsh SCRIPT|FOLDER LINE
# Prints what zsh's own completion system offers for LINE<TAB> once SCRIPT is
# sourced (or FOLDER, holding _connctl, is on fpath as when installed): an interactive zsh on a pseudo-terminal (zpty), compinit, and a
# compadd that prints the matches zsh computed (the approach of
# Valodim/zsh-capture-completion). The inner shell exits after one completion.
zmodload zsh/zpty || exit 1
local script=$1 line=$2 init before_compinit= after_compinit=
if [[ -d $script ]]; then
  before_compinit="fpath=(${(q)script} \$fpath)"
else
  after_compinit="source ${(q)script}"
fi
init=$(mktemp) || exit 1
trap 'rm -f $init' EXIT
cat > $init <<INIT
PROMPT=
RPROMPT=
unsetopt zle_bracketed_paste 2>/dev/null
$before_compinit
autoload -Uz compinit && compinit -u -D
$after_compinit
bindkey '^M' undefined
bindkey '^J' undefined
bindkey '^I' complete-word
null-line() { print -rn -- \$'\\0\\n' }
compprefuncs=( null-line )
comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
compadd() {
  # Calls that only compute matches (-O/-A/-D) are zsh's own plumbing.
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then
    builtin compadd "\$@"
    return \$?
  fi
  local -a __hits
  builtin compadd -A __hits "\$@"
  (( \$#__hits )) || return 1
  print -rl -- "\$IPREFIX"\${^__hits}
}
print -r -- __capture_ready__
INIT
zpty z zsh -f -i || exit 1
zpty -w z "source ${(q)init}"
local out
repeat 100; do
  zpty -r z out || exit 1
  [[ $out == __capture_ready__* ]] && break
done
zpty -w -n z "$line"$'\t'
() {
  local chunk
  integer inside=0
  while zpty -r z chunk; do print -rn -- $chunk; done | while IFS= read -r out; do
    if [[ $out == *$'\0'* ]]; then
      (( inside++ )) && return 0
      continue
    fi
    (( inside )) && print -r -- ${out%$'\r'}
  done
}
