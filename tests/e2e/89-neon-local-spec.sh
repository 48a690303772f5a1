# neon-local answers as Neon's API spec (openapi-v2.yaml) says: the fields
# it marks required, the success codes, paging, and the errors it names.
# Helpers from 90-neon-local.sh; this file loads them without running 90's
# tests.

if ! declare -F start_neon_local >/dev/null; then
    source <(sed '/^for t in/,$d' "$ROOT/tests/e2e/90-neon-local.sh")
fi

# An error in Neon's shape (GeneralError: code and message).
spec_expect_error() { # STATUS WHAT
    expect_eq "$status" "$1" "$2 ($(jq -r .message body.json))"
    expect_eq "$(jq -r '(.code | type) + " " + (.message | type)' body.json)" "string string" "error shape: $2"
}

# Waits for the operations an answer in FILE lists.
spec_wait() { # FILE
    local op
    for op in $(jq -r '.operations[].id' "$1"); do wait_operation "$project" "$op" "$key"; done
}

t_the_project_list_has_what_the_spec_requires_and_pages() {
    start_neon_local
    key=$(cat nl/api-key)
    local name
    for name in alpha-one alpha-two beta; do
        status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
                 -d "{\"project\":{\"name\":\"$name\"}}" "$URL/projects")
        expect_eq "$status" 201 "create project $name"
        cp body.json "created-$name.json"
    done
    beta=$(jq -r .project.id created-beta.json)
    call GET /projects
    expect_eq "$status" 200 "list projects"
    expect_eq "$(jq -r '(.applications | type) + " " + (.integrations | type)' body.json)" "object object" \
        "applications and integrations"
    expect_eq "$(jq -r '[.projects[] | .active_time | type] | unique | join(",")' body.json)" number \
        "every project's active_time"
    for field in id platform_id region_id name pg_version proxy_host branch_logical_size_limit \
                 branch_logical_size_limit_bytes provisioner store_passwords cpu_used_sec creation_source \
                 created_at updated_at owner_id; do
        expect_eq "$(jq -r --arg f "$field" '[.projects[] | has($f)] | all' body.json)" true "every project's $field"
    done
    expect_eq "$(jq -r '.projects | length' body.json)" 3 "projects listed"
    # search: part of the name, or of the id.
    call GET "/projects?search=alpha"
    expect_eq "$(jq -r '[.projects[].name] | sort | join(",")' body.json)" alpha-one,alpha-two "search by name"
    # part of the id: its last words (random ids may share their first ones)
    call GET "/projects?search=${beta#*-}"
    expect_eq "$(jq -r '[.projects[].id] | join(",")' body.json)" "$beta" "search by id"
    # Two at a time, following the cursor until a page is short.
    local seen="" cursor="" pages=0
    while :; do
        call GET "/projects?limit=2${cursor:+&cursor=$cursor}"
        expect_eq "$status" 200 "page $pages ($(jq -r .message body.json))"
        seen="$seen $(jq -r '[.projects[].id] | join(" ")' body.json)"
        pages=$((pages + 1))
        [ "$(jq -r '.projects | length' body.json)" -eq 2 ] || break
        cursor=$(jq -r '.pagination.cursor' body.json)
        [ "$pages" -lt 5 ] || fail "the cursor never ends the list"
    done
    expect_eq "$pages" 2 "pages of two"
    expect_eq "$(echo $seen | tr ' ' '\n' | sort -u | wc -l)" 3 "each project once"
    # Bad paging is refused in Neon's error shape.
    for bad in limit=0 limit=401 limit=ten cursor=not-a-cursor; do
        call GET "/projects?$bad"
        spec_expect_error 400 "$bad"
    done
    call GET "/projects?limit=400"
    expect_eq "$status" 200 "the largest limit"
    stop_neon_local
}

t_a_branch_answer_has_its_annotation() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    call GET "/projects/$project/branches/$main"
    expect_eq "$status" 200 "get the branch"
    expect_eq "$(jq -c '.annotation | {object, value}' body.json)" \
        "{\"object\":{\"type\":\"console/branch\",\"id\":\"$main\"},\"value\":{}}" "the annotation"
    for field in id project_id name current_state state_changed_at creation_source created_at updated_at default \
                 protected cpu_used_sec active_time_seconds compute_time_seconds written_data_bytes \
                 data_transfer_bytes; do
        expect_eq "$(jq -r --arg f "$field" '.branch | has($f)' body.json)" true "the branch's $field"
    done
    stop_neon_local
}

t_success_codes_are_the_specs() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    call POST "/projects/$project/branches/$main/snapshot?name=s1"
    expect_eq "$status" 200 "create a snapshot ($(jq -r .message body.json))"
    cp body.json snapshot.json
    spec_wait snapshot.json
    snap=$(jq -r .snapshot.id snapshot.json)
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"name":"from-s1"}' "$URL/projects/$project/snapshots/$snap/restore")
    expect_eq "$status" 200 "restore the snapshot ($(jq -r .message body.json))"
    cp body.json restored.json
    spec_wait restored.json
    call POST "/projects/$project/branches/$main/roles/neondb_owner/reset_password"
    expect_eq "$status" 200 "reset a role's password ($(jq -r .message body.json))"
    expect_eq "$(jq -r '.role.password | length > 0' body.json)" true "the new password"
    call DELETE "/projects/$project/snapshots/$snap"
    expect_eq "$status" 202 "delete the snapshot ($(jq -r .message body.json))"
    cp body.json deleted.json
    spec_wait deleted.json
    stop_neon_local
}

t_operations_are_paged() {
    chmod 755 .
    start_neon_local
    ready_project
    call GET "/projects/$project/operations"
    total=$(jq -r '.operations | length' body.json)
    [ "$total" -ge 2 ] || fail "a new project has $total operations"
    local seen="" cursor="" pages=0
    while :; do
        call GET "/projects/$project/operations?limit=1${cursor:+&cursor=$cursor}"
        expect_eq "$status" 200 "page $pages ($(jq -r .message body.json))"
        [ "$(jq -r '.operations | length' body.json)" -le 1 ] || fail "a page of 1 has more"
        [ "$(jq -r '.operations | length' body.json)" -eq 1 ] || break
        seen="$seen $(jq -r '.operations[0].id' body.json)"
        pages=$((pages + 1))
        cursor=$(jq -r '.pagination.cursor' body.json)
        [ "$pages" -le "$total" ] || fail "the cursor never ends the list"
    done
    expect_eq "$pages" "$total" "pages of one"
    expect_eq "$(echo $seen | tr ' ' '\n' | sort -u | wc -l)" "$total" "each operation once"
    for bad in limit=0 limit=1001 limit=x cursor=zz; do
        call GET "/projects/$project/operations?$bad"
        spec_expect_error 400 "$bad"
    done
    stop_neon_local
}

t_the_connection_uri_of_what_is_not_there_is_404() {
    chmod 755 .
    start_neon_local
    ready_project
    call GET "/projects/$project/connection_uri?database_name=neondb&role_name=neondb_owner"
    expect_eq "$status" 200 "the uri of the database that is there"
    call GET "/projects/$project/connection_uri?database_name=nosuchdb&role_name=neondb_owner"
    spec_expect_error 404 "a database that does not exist"
    expect_in body.json nosuchdb
    call GET "/projects/$project/connection_uri?database_name=neondb&role_name=nosuchrole"
    spec_expect_error 404 "a role that does not exist"
    stop_neon_local
}

t_a_branch_being_made_cannot_be_patched() {
    chmod 755 .
    start_neon_local
    ready_project
    curl -s -o branch.json -X POST -H "Authorization: Bearer $key" \
         -d '{"branch":{"name":"busy"},"endpoints":[{"type":"read_write"}]}' "$URL/projects/$project/branches"
    branch_id=$(jq -r .branch.id branch.json)
    # At once, while its operations run: refused, and nothing changes.
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"branch":{"name":"renamed"}}' "$URL/projects/$project/branches/$branch_id")
    spec_expect_error 423 "rename a branch being made"
    expect_in body.json "operation in progress"
    spec_wait branch.json
    call GET "/projects/$project/branches/$branch_id"
    expect_eq "$(jq -r .branch.name body.json)" busy "the name after the refused rename"
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"branch":{"name":"renamed"}}' "$URL/projects/$project/branches/$branch_id")
    expect_eq "$status" 200 "rename once it is ready ($(jq -r .message body.json))"
    expect_eq "$(jq -r .branch.name body.json)" renamed "the new name"
    stop_neon_local
}

for t in t_the_project_list_has_what_the_spec_requires_and_pages t_a_branch_answer_has_its_annotation \
         t_success_codes_are_the_specs t_operations_are_paged t_the_connection_uri_of_what_is_not_there_is_404 \
         t_a_branch_being_made_cannot_be_patched; do
    run_test "$t"
done
