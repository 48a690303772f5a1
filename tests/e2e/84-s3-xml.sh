# S3's XML and URLs: keys that hold markup and URL characters go to s3rver
# and back, signed as SigV4 says; and a fake S3 answers the ways a broken or
# hostile service could (a token that never changes, a truncated page with
# no token, a huge answer, entities, malformed XML), each refused clearly.
# start_s3rver comes from 97-pg-module.sh.

# A tiny S3 on 127.0.0.1 that checks every request's SigV4 signature as
# the service does (from the decoded path and query, re-encoded), then
# either forwards it to s3rver (proxy) or answers the case that the listing
# prefix, or the object key, names (fake). Writes its port to ./port, one
# line per request to ./requests.log.
write_fake_s3() {
    cat > fake_s3.py <<'PY'
import hashlib, hmac, http.client, http.server, os, sys, urllib.parse

MODE, SECRET = sys.argv[1], sys.argv[2]
UPSTREAM = sys.argv[3] if len(sys.argv) > 3 else None
UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

def log(line):
    with open("requests.log", "a") as f:
        f.write(line + "\n")

def aws_encode(text, keep_slash):
    return "".join(chr(b) if b in UNRESERVED or (keep_slash and b == ord("/")) else "%%%02X" % b
                   for b in text.encode())

def canonical_query(raw):
    pairs = []
    for part in raw.split("&") if raw else []:
        name, _, value = part.partition("=")
        pairs.append((aws_encode(urllib.parse.unquote(name), False), aws_encode(urllib.parse.unquote(value), False)))
    return "&".join("%s=%s" % p for p in sorted(pairs))

def hmac256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()

def signature_problem(request, body):
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    fields = dict(f.strip().split("=", 1) for f in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    date, region, service, _ = fields["Credential"].split("/")[1:]
    signed = fields["SignedHeaders"].split(";")
    missing = [h for h in signed if h not in request.headers]
    if missing:
        return "signed header %s is not in the request" % missing[0]
    payload = request.headers.get("x-amz-content-sha256", "")
    if payload != hashlib.sha256(body).hexdigest():
        return "the payload hash does not match the body"
    raw_path, _, raw_query = request.path.partition("?")
    canonical = "\n".join([
        request.command,
        aws_encode(urllib.parse.unquote(raw_path), True),
        canonical_query(raw_query),
        "".join("%s:%s\n" % (h, " ".join(request.headers[h].split())) for h in signed),
        ";".join(signed),
        payload])
    scope = "/".join([date, region, service, "aws4_request"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", request.headers["x-amz-date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = hmac256(("AWS4" + SECRET).encode(), date)
    for part in (region, service, "aws4_request"):
        key = hmac256(key, part)
    if hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() != fields["Signature"]:
        return "signature mismatch"
    return None

def listing(contents, truncated=False, token=None, encoded=False):
    body = '<?xml version="1.0" encoding="UTF-8"?>\n'
    body += '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>exports</Name>'
    body += "<EncodingType>url</EncodingType>" if encoded else ""
    body += "".join("<Contents><Key>%s</Key><Size>1</Size></Contents>" % k for k in contents)
    body += "<IsTruncated>%s</IsTruncated>" % ("true" if truncated else "false")
    body += "<NextContinuationToken>%s</NextContinuationToken>" % token if token is not None else ""
    return 200, (body + "</ListBucketResult>").encode()

ENTITIES = (b"<Error><Code>AccessDenied</Code><Message>R&amp;D &lt;weekly&gt; is &quot;closed&quot; &#8212; ask "
            b"&#x41;lice&apos;s team</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>")
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
          b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
          b"<ListBucketResult><Contents><Key>&d;</Key></Contents></ListBucketResult>")

def fake_answer(case, query, pages):
    if case == "same-token":
        return listing(["k%d" % pages], True, "tok-1") if pages <= 50 else (400, b"<Error><Code>Loop</Code></Error>")
    if case == "cycle-token":
        return listing(["k%d" % pages], True, "AB"[pages % 2]) if pages <= 50 else (400, b"")
    if case == "no-token":
        return listing(["k1"], True)
    if case == "encoded":
        token = query.get("continuation-token", [None])[0]
        if token is None:
            return listing(["encoded/R%26D+%3Cw%3E%2B1.dump"], True, "a/b+c=&amp;d &#233;", encoded=True)
        if token != "a/b+c=&d \u00e9":
            return 400, b"<Error><Code>InvalidArgument</Code><Message>wrong token</Message></Error>"
        return listing(["encoded/caf%C3%A9+2.dump"], encoded=True)
    if case == "entities":
        return 403, ENTITIES
    if case == "truncated-xml":
        return 200, b"<ListBucketResult><Contents><Key>a</Key></Contents>"
    if case == "mismatched-xml":
        return 200, b"<ListBucketResult><Contents><Key>a</Size></Contents></ListBucketResult>"
    if case == "bad-reference":
        return 200, b"<ListBucketResult><Contents><Key>a&#0;b</Key></Contents></ListBucketResult>"
    if case == "laughs":
        return 200, LAUGHS
    if case == "html":
        return 403, b"<html><body><h1>403 Forbidden</h1><hr></body></html>"
    if case == "not-a-listing":
        return 200, b"<Owner><ID>x</ID></Owner>"
    return 404, b"<Error><Code>NoSuchKey</Code><Message>no such case</Message></Error>"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages = {}

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for h in headers:
            self.send_header(*h)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer_huge(self):
        size, sent, chunk = 256 << 20, 0, b"x" * 65536
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            self.wfile.write(b"<ListBucketResult><Name>")
            while sent < size - 24:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        log("huge answer: %d bytes sent" % sent)
        self.close_connection = True

    def forward(self, body):
        host, port = UPSTREAM.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "expect")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        headers = [(k, v) for k, v in reply.getheaders()
                   if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        if self.command != "HEAD":
            return self.answer(reply.status, data, headers)
        self.send_response(reply.status)
        for h in headers + [("Content-Length", reply.getheader("Content-Length", "0"))]:
            self.send_header(*h)
        self.end_headers()

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        problem = signature_problem(self, body)
        log("%s %s %s" % (self.command, self.path, problem or "signed"))
        if problem:
            return self.answer(403, b"<Error><Code>SignatureDoesNotMatch</Code><Message>" + problem.encode() +
                               b"</Message></Error>")
        if MODE == "proxy":
            return self.forward(body)
        raw_path, _, raw_query = self.path.partition("?")
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        if "list-type" in query:
            case = query.get("prefix", [""])[0].split("/")[0]
        else:
            case = urllib.parse.unquote(raw_path).split("/")[2]
        Handler.pages[case] = Handler.pages.get(case, 0) + 1
        if case == "huge":
            return self.answer_huge()
        self.answer(*fake_answer(case, query, Handler.pages[case]))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open("port.tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename("port.tmp", "port")
server.serve_forever()
PY
}

# Starts the fake S3 (MODE proxy UPSTREAM, or fake) and points drctl at it;
# sets FAKE_PID.
start_fake_s3() { # MODE [UPSTREAM]
    command -v python3 >/dev/null || fail "these tests need python3 (their fake S3)"
    write_fake_s3
    rm -f port requests.log
    python3 fake_s3.py "$1" s3-secret-never-shown-4711 "${2:-}" > fake_s3.log 2>&1 &
    FAKE_PID=$!
    for _ in $(seq 1 200); do [ -s port ] && break; sleep 0.05; done
    [ -s port ] || fail "the fake S3 did not start: $(cat fake_s3.log)"
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=s3-secret-never-shown-4711
    export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat port)
}

stop_fake_s3() {
    kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null || true
}

# The listing (or download) of one URL through the fake S3.
ask_fake() { # URL [OP]
    dr run s3-list -p "url=$1" -p "op=${2:-list}" -p "work=$PWD"
}

t_keys_with_markup_and_url_characters_round_trip_through_s3rver_signed() {
    [ -x "$S3RVER" ] || fail "s3rver is not installed (tests/contract/install.sh)"
    start_s3rver
    start_fake_s3 proxy "${S3_URL#http://}"
    head -c 9500000 /dev/urandom > dump.bin # more than one part: a multipart upload
    mkdir work
    dr run s3-keys -p "file=$PWD/dump.bin" -p "prefix=s3://exports/R&D <weekly> +x/" -p "work=$PWD/work"
    expect_rc 0
    run=$(run_id)
    expect_eq "$(jq -r '.steps[0].outputs.key' "$(rundir drctl-audit "$run")/state.json")" \
        "R&D <weekly> +x/base 1+1=2 & <b> \"q\" 'a' ?#%25 é☺.dump" "the key listed"
    # Every request was signed as the service checks it, the multipart ones
    # and a listing of that prefix among them.
    expect_eq "$(grep -vc ' signed$' requests.log)" 0 "requests not signed right: $(grep -v ' signed$' requests.log)"
    grep -q '^POST .*?uploads= signed$' requests.log || fail "no multipart upload: $(cat requests.log)"
    grep -q '^GET /exports?.*prefix=R%26D%20%3Cweekly%3E%20%2Bx%2F signed$' requests.log || fail "no listing"
    stop_fake_s3
    kill "$S3_PID"; wait "$S3_PID" 2>/dev/null || true
}

t_a_listing_whose_token_never_changes_stops() {
    start_fake_s3 fake
    ask_fake "s3://exports/same-token/weekly/"
    expect_rc 1
    expect_in err "S3 listing of s3://exports/same-token/weekly/: page 2 gives the continuation token 'tok-1' again (first given by page 1)"
    expect_eq "$(grep -c 'list-type=2' requests.log)" 2 "listing requests"
    # Tokens that go round (A, B, A) are the same loop.
    rm -rf drctl-audit
    ask_fake "s3://exports/cycle-token/"
    expect_rc 1
    expect_in err "page 3 gives the continuation token 'B' again (first given by page 1)"
    stop_fake_s3
}

t_a_truncated_listing_with_no_token_stops() {
    start_fake_s3 fake
    ask_fake "s3://exports/no-token/weekly/"
    expect_rc 1
    expect_in err "S3 listing of s3://exports/no-token/weekly/: page 1 says it is truncated but gives no NextContinuationToken"
    expect_eq "$(grep -c 'list-type=2' requests.log)" 1 "listing requests"
    stop_fake_s3
}

t_an_oversized_answer_is_refused_and_memory_stays_small() {
    start_fake_s3 fake
    # drctl's peak memory, from the parent's view of its child.
    set +e
    python3 -c 'import resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stdout=open("out", "w"), stderr=open("err", "w"), stdin=subprocess.DEVNULL)
open("peak_rss_kb", "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)' "$DRCTL" --runbooks "$TEST_RUNBOOKS" run s3-list -p url=s3://exports/huge/ -p "work=$PWD"
    rc=$?
    set -e
    expect_rc 1
    expect_in err "the answer is larger than 8 MiB, more than any listing or error S3 sends; refused"
    expect_eq "$(grep -c 'list-type=2' requests.log)" 1 "listing requests (a refused answer is not asked again)"
    sent=$(sed -n 's/^huge answer: \([0-9]*\) bytes sent$/\1/p' requests.log)
    [ "$sent" -lt $((64 << 20)) ] || fail "drctl read $sent bytes of the answer"
    echo "peak RSS: $(cat peak_rss_kb) kB; the fake S3 sent $sent of 268435456 bytes" >&2
    # (Under AddressSanitizer freed memory sits in quarantine: RSS says nothing there.)
    if [ -z "${ASAN_OPTIONS:-}" ]; then
        [ "$(cat peak_rss_kb)" -lt 100000 ] || fail "drctl grew to $(cat peak_rss_kb) kB"
    fi
    stop_fake_s3
}

t_an_error_answer_shows_its_message_decoded() {
    start_fake_s3 fake
    ask_fake "s3://exports/entities/weekly/"
    expect_rc 1
    expect_in err "S3 listing of s3://exports/entities/weekly/: 403 AccessDenied: R&D <weekly> is \"closed\" — ask Alice's team"
    # A download's error is read too, not written into the file.
    rm -rf drctl-audit
    ask_fake "s3://exports/entities/weekly.dump" download
    expect_rc 1
    expect_in err "S3 download of s3://exports/entities/weekly.dump: 403 AccessDenied: R&D <weekly> is \"closed\""
    [ ! -e object ] && [ ! -e object.partial ] || fail "the refused download left a file"
    # A ".." in a key is part of its name: the request goes to that key.
    rm -rf drctl-audit
    ask_fake "s3://exports/entities/../weekly.dump" download
    expect_rc 1
    expect_in err "S3 download of s3://exports/entities/../weekly.dump: 403 AccessDenied"
    grep -q '^GET /exports/entities/../weekly.dump signed$' requests.log || fail "the key was changed: $(cat requests.log)"
    stop_fake_s3
}

t_malformed_xml_is_a_clear_error() {
    start_fake_s3 fake
    for case in truncated-xml:"no element found" mismatched-xml:"line 1, column 37: mismatched tag" \
                bad-reference:"reference to invalid character number" \
                laughs:"it declares a DOCTYPE, which S3 never sends"; do
        rm -rf drctl-audit
        ask_fake "s3://exports/${case%%:*}/"
        expect_rc 1
        expect_in err "S3 listing of s3://exports/${case%%:*}/: the answer is not valid XML (line 1, column"
        expect_in err "${case#*:}"
    done
    rm -rf drctl-audit
    ask_fake "s3://exports/html/"
    expect_rc 1
    expect_in err "S3 listing of s3://exports/html/: 403 (the answer is not valid XML: line 1, column"
    rm -rf drctl-audit
    ask_fake "s3://exports/not-a-listing/"
    expect_rc 1
    expect_in err "S3 listing of s3://exports/not-a-listing/: the answer is <Owner>, not what S3 sends"
    stop_fake_s3
}

t_url_encoded_keys_and_tokens_come_back_decoded_across_pages() {
    start_fake_s3 fake
    ask_fake "s3://exports/encoded/"
    expect_rc 0
    run=$(run_id)
    expect_eq "$(jq -c '.steps[0].outputs.keys' "$(rundir drctl-audit "$run")/state.json")" \
        '["encoded/R&D <w>+1.dump","encoded/café 2.dump"]' "keys listed"
    expect_eq "$(grep -vc ' signed$' requests.log)" 0 "requests not signed right: $(grep -v ' signed$' requests.log)"
    expect_eq "$(grep -c 'list-type=2' requests.log)" 2 "listing requests"
    stop_fake_s3
}

for t in t_keys_with_markup_and_url_characters_round_trip_through_s3rver_signed \
         t_a_listing_whose_token_never_changes_stops t_a_truncated_listing_with_no_token_stops \
         t_an_oversized_answer_is_refused_and_memory_stays_small t_an_error_answer_shows_its_message_decoded \
         t_malformed_xml_is_a_clear_error t_url_encoded_keys_and_tokens_come_back_decoded_across_pages; do
    run_test "$t"
done
