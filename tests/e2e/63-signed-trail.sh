# Signed audit commits: DRCTL_SIGNING_KEY signs every commit as git's
# gpg.format=ssh does, drctl audit verify --allowed-signers checks them, and
# git itself (verify-commit, log --show-signature) agrees.

signing_key() { # NAME [TYPE]: makes NAME and NAME.pub (no passphrase)
    ssh-keygen -q -t "${2:-ed25519}" -N '' -C "$1" -f "$1"
}

allow() { # EMAIL KEY_NAME: an allowed-signers line
    echo "$1 $(cut -d' ' -f1,2 "$2.pub")"
}

signed_dr() { # KEY args...
    local key=$1
    shift
    set +e
    DRCTL_SIGNING_KEY="$PWD/$key" DRCTL_OPERATOR="Alice <alice@example.org>" setsid -w "$DRCTL" \
        --runbooks "$TEST_RUNBOOKS" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

t_every_commit_is_signed_and_git_agrees() {
    signing_key alice
    allow alice@example.org alice >allowed
    signed_dr alice run hold -p dir="$PWD" --approve promote --run-id s1
    expect_rc 0
    signed_dr alice config set contact "ops@example.org"
    expect_rc 0
    commits=$(git -C drctl-audit rev-list --count HEAD)
    [ "$commits" -gt 5 ] || fail "only $commits commits"
    # git's own verdict on every commit: G (good) with the allowed signers
    expect_eq "$(git -C drctl-audit -c gpg.ssh.allowedSignersFile="$PWD/allowed" log --format=%G? | sort -u)" G
    git -C drctl-audit -c gpg.ssh.allowedSignersFile="$PWD/allowed" verify-commit HEAD 2>verify.err \
        || fail "git verify-commit: $(cat verify.err)"
    expect_in verify.err 'Good "git" signature for alice@example.org with ED25519 key'
    # ssh-keygen, the reference, on the first commit's payload and signature
    first=$(git -C drctl-audit rev-list --max-parents=0 HEAD)
    git -C drctl-audit cat-file commit "$first" >raw
    python3 - <<'PY'
raw = open("raw", "rb").read()
head, _, message = raw.partition(b"\n\n")
payload, sig, in_sig = [], [], False
for line in head.split(b"\n"):
    if line.startswith(b"gpgsig "):
        in_sig = True
        sig.append(line[7:])
    elif in_sig and line.startswith(b" "):
        sig.append(line[1:])
    else:
        in_sig = False
        payload.append(line)
open("payload", "wb").write(b"\n".join(payload) + b"\n\n" + message)
open("sig", "wb").write(b"\n".join(sig) + b"\n")
PY
    ssh-keygen -Y verify -f allowed -I alice@example.org -n git -s sig <payload >kv.out 2>&1 \
        || fail "ssh-keygen -Y verify: $(cat kv.out)"
    dr audit verify --allowed-signers allowed --json
    expect_rc 0
    expect_eq "$(jq -r '[.ok, .signed_commits, .commits] | @tsv' out)" "true	$commits	$commits"
    # another key, or the same key for another person: named, commit by commit
    signing_key mallory
    allow alice@example.org mallory >others
    dr audit verify --allowed-signers others
    expect_rc 1
    expect_in out "which may not sign for its author alice@example.org"
    expect_eq "$(grep -c 'which may not sign' out)" "$commits" "commits named"
}

t_a_commit_rewritten_and_force_pushed_is_detected() {
    signing_key alice
    allow alice@example.org alice >allowed
    git init -q --bare -b main origin.git
    git init -q -b main drctl-audit
    git -C drctl-audit remote add origin "$PWD/origin.git"
    signed_dr alice run hold -p dir="$PWD" --approve promote --run-id s2
    expect_rc 0
    # Mallory rewrites the last commit by hand (same tree, her own words)
    git -C drctl-audit -c user.name=Alice -c user.email=alice@example.org commit -q --amend -m "s2: run done (edited)"
    git -C drctl-audit push -q --force origin main
    git clone -q origin.git fresh
    "$DRCTL" --audit fresh audit verify --allowed-signers allowed >out 2>err && rc=0 || rc=$?
    expect_rc 1
    expect_in out "the commit is not signed (by Alice <alice@example.org>, \"s2: run done (edited)\")"
    # signed again with a key nobody allowed: still named
    git -C drctl-audit -c user.name=Alice -c user.email=alice@example.org -c gpg.format=ssh \
        -c user.signingkey="$PWD/alice" commit -q --amend -S -m "s2: run done"
    signing_key mallory
    git -C drctl-audit -c user.name=Alice -c user.email=alice@example.org -c gpg.format=ssh \
        -c user.signingkey="$PWD/mallory" commit -q --amend -S -m "s2: run done"
    "$DRCTL" --audit drctl-audit audit verify --allowed-signers allowed >out 2>err && rc=0 || rc=$?
    expect_rc 1
    expect_eq "$(grep -c 'lists no line for this key\|no line lists\|which may not sign' out)" 1 "the one rewritten commit"
}

t_a_key_ssh_keygen_signs_rsa_too() {
    signing_key bob rsa
    echo "alice@example.org $(cut -d' ' -f1,2 bob.pub)" >allowed
    signed_dr bob run hold -p dir="$PWD" --approve promote --run-id s3
    expect_rc 0
    expect_eq "$(git -C drctl-audit -c gpg.ssh.allowedSignersFile="$PWD/allowed" log --format=%G? | sort -u)" G
    dr audit verify --allowed-signers allowed
    expect_rc 0
}

t_a_key_that_cannot_sign_commits_nothing() {
    signing_key alice
    chmod 644 alice
    signed_dr alice run hold -p dir="$PWD" --approve promote --run-id s4
    expect_rc 2
    expect_in err "UNPROTECTED PRIVATE KEY FILE"
    [ ! -e drctl-audit ] || fail "the trail was created although its commits could not be signed"
    chmod 600 alice
    echo "not a key" >notakey
    chmod 600 notakey
    signed_dr notakey run hold -p dir="$PWD" --approve promote --run-id s4
    expect_rc 2
    expect_in err "DRCTL_SIGNING_KEY"
    [ ! -e drctl-audit ] || fail "the trail was created with an unusable key"
    # an RSA key needs ssh-keygen: without it, refused before any commit
    signing_key rsa rsa
    mkdir nobin
    for tool in git jq setsid; do ln -s "$(command -v $tool)" nobin/; done
    set +e
    PATH="$PWD/nobin" DRCTL_SIGNING_KEY="$PWD/rsa" "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" \
        --approve promote --run-id s4 >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 2
    expect_in err "ssh-keygen is not installed: install openssh-client"
    [ ! -e drctl-audit ] || fail "the trail was created although ssh-keygen is missing"
    # a good key then works, and the run id was never used
    signed_dr alice run hold -p dir="$PWD" --approve promote --run-id s4
    expect_rc 0
}

t_an_allowed_signers_file_that_does_not_parse_is_usage() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id s5
    expect_rc 0
    printf '# team\nalice@example.org ssh-ed25519\n' >broken
    dr audit verify --allowed-signers broken
    expect_rc 2
    expect_in err "broken:2:"
    dr audit verify --allowed-signers missing-file
    expect_rc 2
    expect_in err "missing-file"
    dr audit log --allowed-signers broken
    expect_rc 2
    expect_in err "--allowed-signers applies to drctl audit verify only"
    # unsigned commits, checked against a good file: each named
    signing_key alice
    allow alice@example.org alice >allowed
    dr audit verify --allowed-signers allowed
    expect_rc 1
    expect_in out "the commit is not signed"
}

for t in t_every_commit_is_signed_and_git_agrees t_a_commit_rewritten_and_force_pushed_is_detected \
         t_a_key_ssh_keygen_signs_rsa_too t_a_key_that_cannot_sign_commits_nothing \
         t_an_allowed_signers_file_that_does_not_parse_is_usage; do
    run_test "$t"
done
