_connctl_complete() {
    local IFS=$'\013'
    local _CLAP_COMPLETE_COMP_TYPE=${COMP_TYPE}
    if compopt +o nospace 2> /dev/null; then
        local _CLAP_COMPLETE_SPACE=false
    else
        local _CLAP_COMPLETE_SPACE=true
    fi
    # Bash splits words at COMP_WORDBREAKS (`--store=PATH` arrives as
    # `--store` `=` `PATH`); connctl sees one word. Join back the pieces the
    # command line has no blank between, and end the current word at the cursor.
    local words=() starts=() cword=0 pos=0 i n word rest lead
    for (( i = 0; i < ${#COMP_WORDS[@]}; i++ )); do
        word=${COMP_WORDS[i]}
        rest=${COMP_LINE:pos}
        lead=${rest%%[![:space:]]*}
        n=${#words[@]}
        if (( i == 0 || ${#lead} > 0 )); then
            words[n]=$word
            starts[n]=$(( pos + ${#lead} ))
        else
            words[n-1]+=$word
        fi
        (( i == COMP_CWORD )) && cword=$(( ${#words[@]} - 1 ))
        pos=$(( pos + ${#lead} + ${#word} ))
    done
    if (( COMP_CWORD >= ${#COMP_WORDS[@]} )); then
        cword=${#words[@]}
        starts[cword]=$COMP_POINT
    fi
    words[cword]=${COMP_LINE:starts[cword]:COMP_POINT-starts[cword]}
    COMPREPLY=( $( \
        _CLAP_IFS="$IFS" \
        _CLAP_COMPLETE_INDEX="$cword" \
        _CLAP_COMPLETE_COMP_TYPE="$_CLAP_COMPLETE_COMP_TYPE" \
        _CLAP_COMPLETE_SPACE="$_CLAP_COMPLETE_SPACE" \
        @VAR@="bash" \
        @COMPLETER@ -- "${words[@]}" \
    ) )
    if [[ $? != 0 ]]; then
        unset COMPREPLY
        return
    fi
    # Bash replaces only the text after the last break character ("$2"):
    # drop what comes before it from each candidate.
    local before=${words[cword]%"${2-}"}
    if [[ -n $before && ${words[cword]} == *"${2-}" ]]; then
        COMPREPLY=( "${COMPREPLY[@]#"$before"}" )
    fi
    if [[ $_CLAP_COMPLETE_SPACE == false ]] && [[ "${COMPREPLY-}" =~ [=/:]$ ]]; then
        compopt -o nospace
    fi
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -o nospace -o bashdefault -o nosort -F _connctl_complete @BIN@
else
    complete -o nospace -o bashdefault -F _connctl_complete @BIN@
fi
