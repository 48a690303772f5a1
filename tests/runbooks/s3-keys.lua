-- Objects whose keys hold XML and URL specials (& < > " ' space + = ? # %
-- and non-ASCII) go to S3 and back: a multipart upload and a small text,
-- listed under a prefix with the same characters, downloaded, checked,
-- deleted.
local dump = require "dump"
local check = require "testing.check"

return runbook {
  name = "s3-keys", version = "1.0.0",
  summary = "Test runbook: S3 keys with characters that need escaping",
  params = { file = { type = "path", required = true }, prefix = { type = "path", required = true },
             work = { type = "path", required = true } },
  steps = {
    { name = "round-trip", run = function(ctx)
        local prefix = ctx.params.prefix
        local big_url = prefix .. "base 1+1=2 & <b> \"q\" 'a' ?#%25 \u{e9}\u{263a}.dump"
        local text_url = prefix .. "manifest &amp; <x>.json"
        local sent = dump.upload(ctx.params.file, big_url)
        dump.write_text(text_url, "{\"note\": \"R&D <weekly>\"}")
        local listed = dump.list_remote(prefix)
        check(#listed == 2, "objects listed", #listed, 2)
        table.sort(listed, function(a, b) return a.key < b.key end)
        local bucket_len = #(prefix:match("^s3://[^/]+/"))
        local key_prefix = prefix:sub(bucket_len + 1)
        check(listed[1].url == big_url, "the dump's listed url", listed[1].url, big_url)
        check(listed[1].key == key_prefix .. big_url:sub(#prefix + 1), "the dump's key", listed[1].key,
              key_prefix .. big_url:sub(#prefix + 1))
        check(listed[1].size == sent.bytes, "the dump's listed size", listed[1].size, sent.bytes)
        check(listed[2].url == text_url, "the text's listed url", listed[2].url, text_url)
        local copy = ctx.params.work .. "/copy.dump"
        dump.download(big_url, copy)
        check(dump.sha256(copy) == sent.sha256, "sha256 after the round trip", dump.sha256(copy), sent.sha256)
        local text = dump.read_text(text_url)
        check(text == "{\"note\": \"R&D <weekly>\"}", "the text read back", text, "as written")
        dump.delete(big_url)
        dump.delete(text_url)
        check(#dump.list_remote(prefix) == 0, "objects left", #dump.list_remote(prefix), 0)
        return { key = listed[1].key, bytes = sent.bytes }
      end },
  },
}
