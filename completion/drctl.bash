# bash completion for drctl. drctl answers itself (drctl __complete), from
# the runbooks, params, steps and runs there are now.
# Installed in /usr/share/bash-completion/completions/drctl; or: source it.

_drctl() {
    local line=${COMP_LINE:0:COMP_POINT} words cur out candidate strip=""
    # The words as typed, split on blanks only: "-p strategy=re" stays two.
    read -ra words <<< "$line"
    [[ -z $line || $line == *[[:blank:]] ]] && words+=("")
    cur=${words[${#words[@]}-1]}
    out=$("${words[0]}" __complete "$(( ${#words[@]} - 1 ))" "${words[@]}" 2>/dev/null) || return 0
    COMPREPLY=()
    case $out in
        :dirs) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return 0 ;;
        :files) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0 ;;
    esac
    # bash replaces only what follows the last = or : of the word.
    if [[ $cur == *[=:]* ]]; then
        strip=${cur%"${cur##*[=:]}"}
        [[ $COMP_WORDBREAKS == *"${strip: -1}"* ]] || strip=""
    fi
    while IFS= read -r candidate; do
        [[ -n $candidate ]] && COMPREPLY+=("${candidate#"$strip"}")
    done <<< "$out"
    # "name=" waits for its value.
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _drctl drctl
