"""The built-in detection rules: plain Python over the normalized :class:`Event` of either log type.

Each ``match`` function is called only after the engine's cheap gate (see :class:`Rule`), so it
can assume, e.g., that the operation is an object operation. A match returns ``None`` or a hit
``(weight, distinct_value, severity_override, details)``.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from typing import Any, Iterable

from .model import ONE, Rule, actor_of

GIB = 1 << 30
MIB = 1 << 20
DEFAULT_MIN_ERROR_SHARE = 0.25     # error rules: errors must be >= this share of the actor's requests
DEFAULT_OBJECT_CAP = 128 * MIB     # s3.mass_download: bytes one object counts at most (0: no cap)

OBJECT_ACTIONS = frozenset((
    "GetObject", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects",
    "GetObjectAcl", "PutObjectAcl", "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging",
    "GetObjectAttributes", "GetObjectRetention", "PutObjectRetention", "GetObjectLegalHold",
    "PutObjectLegalHold", "RestoreObject", "SelectObjectContent", "UploadPart", "UploadPartCopy",
    "CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts",
    "GetObjectTorrent",
))
POLICY_ACTIONS = frozenset((
    "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketAcl", "PutBucketPublicAccessBlock",
    "DeleteBucketPublicAccessBlock", "PutBucketCors", "DeleteBucketCors", "PutBucketLifecycle",
    "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle", "PutBucketReplication",
    "DeleteBucketReplication", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls",
))
# Access logs carry no request body: a PUT of logging or versioning may enable or disable them.
BODYLESS_CONTROL_OPS = frozenset(("REST.PUT.LOGGING_STATUS", "REST.PUT.VERSIONING"))
CONTROL_ACTIONS = frozenset(("PutBucketLogging", "PutBucketVersioning", "DeleteBucketPublicAccessBlock",
                             "DeleteBucketEncryption", "PutBucketPublicAccessBlock"))
WRITE_ACTIONS = frozenset(("PutObject", "CopyObject", "CompleteMultipartUpload", "PutObjectAcl",
                           "PutObjectRetention", "PutObjectLegalHold", "PutObjectTagging", "DeleteObjectTagging"))
DELETE_ACTIONS = frozenset(("DeleteObject", "DeleteObjects"))
UPLOAD_ACTIONS = frozenset(("PutObject", "CopyObject", "CompleteMultipartUpload"))

DEFAULT_SENSITIVE = (
    "*.env", "*.env.*", "*.pem", "*.key", "*.pfx", "*.p12", "*.ppk", "*.jks", "*.keystore", "*.kdbx",
    "*.tfstate", "*.tfstate.backup", "*id_rsa*", "*id_dsa*", "*id_ecdsa*", "*id_ed25519*", "*secret*",
    "*credential*", "*password*", "*.htpasswd", "*.pgpass", "*.netrc", "*.npmrc", "*.git-credentials",
    "*wp-config.php*", "*.aws/config",
)
PENTEST_UA = re.compile(
    r"(?<![a-z])kali(?![a-z])|parrot ?(?:os|sec)|(?<![a-z])parrot\d|pentoo|s3scanner|bucket_finder|"
    r"awsbucketdump|(?<!yahoo! )(?<![a-z])slurp(?![a-z])|s3recon|cloud_enum|lazys3|(?<![a-z])pacu(?![a-z])|"
    r"sandcastle|s3-inspector|scoutsuite|scout suite|s3enum|bucketstream|goblob|festin|s3-buckets-bruteforcer|"
    r"teh_s3_bucketeer|mass3|cloudbrute|s3brute|s3-fuzzer|weirdaal|cloudsploit-scan|nuclei|sqlmap|nikto|"
    r"dirbuster|gobuster|feroxbuster|(?<![a-z])ffuf(?![a-z])|wfuzz|masscan|zgrab",
    re.I)
# Code-level twin of PENTEST_UA (the column path): every alternative contains one of these lower-case
# literals, so an ASCII user agent without one cannot match (tests check each alternative).
PENTEST_LITERALS = (
    "kali", "parrot", "pentoo", "s3scanner", "bucket_finder", "awsbucketdump", "slurp", "s3recon", "cloud_enum",
    "lazys3", "pacu", "sandcastle", "s3-inspector", "scoutsuite", "scout suite", "s3enum", "bucketstream", "goblob",
    "festin", "s3-buckets-bruteforcer", "teh_s3_bucketeer", "mass3", "cloudbrute", "s3brute", "s3-fuzzer",
    "weirdaal", "cloudsploit-scan", "nuclei", "sqlmap", "nikto", "dirbuster", "gobuster", "feroxbuster", "ffuf",
    "wfuzz", "masscan", "zgrab",
)
WEB_PROBE = re.compile(
    r"\.\./|\.\.\\|\.\.%2f|\.\.%5c|%2e%2e|%252e%252e|\.%2e|%2e\.|%c0%ae|<\?php|%3c%3fphp|/etc/passwd|"
    r"etc%2fpasswd|/proc/self/environ|<script|%3cscript|union(?:\s|\+|%20)+(?:all(?:\s|\+|%20)+)?select|"
    r"\$\{jndi:|%24%7bjndi|\$%7bjndi|\\think|think%5c|eval-stdin\.php|cmd\.exe|/bin/(?:ba)?sh|"
    r"onerror=|javascript:|%00|\x00", re.I)
# Cheap pre-check: every WEB_PROBE alternative contains one of these (lower-cased) substrings.
_PROBE_TRIGGERS = ("..", "%2e", "%2E", "<", "%3c", "%3C", "passwd", "environ", "union", "UNION", "Union",
                   "${", "jndi", "%24", "\\", "think", "eval-stdin", "cmd.", "/bin/", "onerror", "javascript",
                   "%00", "\x00", "%c0", "%C0", "%252")
# Prefilter literals (lower-case): every alternative of the regex below contains one of them.
PROBE_LITERALS = tuple(sorted({t.lower() for t in _PROBE_TRIGGERS}))
RANSOM_LITERALS = ("decrypt", "restore", "recover", "unlock", "ransom", "payment", "encrypted", "locked",
                   "_readme.txt", "!!!")
RANSOM_NOTE = re.compile(
    r"readme[_\-. ]?(?:for|to)[_\-. ]?decrypt|how[_\-. ]?to[_\-. ]?(?:decrypt|restore|recover|unlock)|"
    r"decrypt[_\-. ]?(?:instructions?|files|info|readme)|restore[_\-. ]?(?:my[_\-. ]?|your[_\-. ]?)?files|"
    r"recover[_\-. ]?(?:your[_\-. ]?)?files|ransom|(?:payment)[_\-. ]?(?:note|info|instructions?)|"
    r"unlock[_\-. ]?(?:instructions?|guide|your[_\-. ]?files)|"
    r"(?:all[_\-. ]?)?(?:your[_\-. ]?)?files?[_\-. ]?(?:have[_\-. ]?been[_\-. ]?|are[_\-. ]?)(?:encrypted|locked)|"
    r"_readme\.txt$|!!!.*(?:read|decrypt)",
    re.I)
NOTE_EXTENSIONS = (".txt", ".html", ".htm", ".hta", ".md", ".rtf", ".url")
ORG_CONDITIONS = frozenset(k.lower() for k in (
    "aws:PrincipalOrgID", "aws:SourceOrgID", "aws:PrincipalOrgPaths", "aws:SourceOrgPaths", "aws:SourceAccount",
    "aws:SourceOwner", "aws:SourceArn", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:SourceVpc",
    "aws:SourceVpce", "aws:userid", "aws:username", "aws:ResourceAccount", "aws:SourceIp", "aws:CalledVia",
    "s3:DataAccessPointAccount", "s3:DataAccessPointArn",
))
PUBLIC_ACL_VALUES = ("public-read", "public-read-write", "authenticated-read")
ALL_USERS = ("acs.amazonaws.com/groups/global/AllUsers", "acs.amazonaws.com/groups/global/AuthenticatedUsers")


# --------------------------------------------------------------------------- helpers

def ok(ev) -> bool:
    """Successful-ish: no error code and a status below 400 (a missing status counts as success)."""
    st = ev.http_status
    return ev.error_code is None and (st is None or st < 400)


by_actor = actor_of  # group key: the requester, or the remote IP of an anonymous request


def by_bucket_actor(ev):
    r = ev.requester
    return (ev.bucket, r if r is not None else ev.remote_ip)


def sent_bytes(ev) -> int:
    return ev.bytes_sent or 0


def by_bucket_ip(ev):
    return (ev.bucket, ev.remote_ip)


def _params(ev) -> dict:
    detail = ev.detail
    if detail is None:
        return {}
    p = detail.get("requestParameters")
    return p if isinstance(p, dict) else {}


def _is_service(ev) -> bool:
    if ev.principal_type == "service":
        return True
    ua = ev.user_agent
    return ua is not None and ua.startswith("aws-internal")


def load_policy(value: Any) -> dict | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        for kind in ("AWS", "CanonicalUser"):
            for value in _as_list(principal.get(kind)):
                if value == "*" or (isinstance(value, str) and value.startswith("arn:aws:iam::*:")):
                    return True
    return False


def _restricted(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    for op_block in condition.values():
        if isinstance(op_block, dict):
            for key in op_block:
                if isinstance(key, str) and key.lower() in ORG_CONDITIONS:
                    return True
    return False


def policy_public(policy: Any) -> bool:
    """True when some Allow statement grants a wildcard principal without a restricting condition."""
    doc = load_policy(policy)
    if doc is None:
        return False
    for st in _as_list(doc.get("Statement")):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if _wildcard_principal(st.get("Principal")) and not _restricted(st.get("Condition")):
            return True
    return False


def policy_external_accounts(policy: Any, trusted: frozenset, own: str | None) -> list[str]:
    """Account ids granted by Allow statements that are neither trusted nor the bucket owner's."""
    doc = load_policy(policy)
    found: list[str] = []
    if doc is None:
        return found
    for st in _as_list(doc.get("Statement")):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        values = _as_list(principal.get("AWS")) if isinstance(principal, dict) else []
        for value in values:
            if not isinstance(value, str):
                continue
            m = re.match(r"^(?:arn:aws[a-z-]*:iam::)?(\d{12})(?::|$)", value)
            if m and m.group(1) not in trusted and m.group(1) != own and m.group(1) not in found:
                found.append(m.group(1))
    return found


def acl_public(params: dict) -> bool:
    for value in _as_list(params.get("x-amz-acl")):
        if value in PUBLIC_ACL_VALUES:
            return True
    for header in ("x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-full-control",
                   "x-amz-grant-read-acp", "x-amz-grant-write-acp"):
        if any(isinstance(v, str) and ("AllUsers" in v or "AuthenticatedUsers" in v)
               for v in _as_list(params.get(header))):
            return True
    acp = params.get("AccessControlPolicy")
    if acp is not None:
        text = json.dumps(acp)
        return any(uri in text for uri in ALL_USERS)
    return False


def deleted_keys(ev) -> list[str]:
    """Keys of a CloudTrail DeleteObjects (requestParameters.delete.Object), else the event's key."""
    if ev.detail is not None and ev.action == "DeleteObjects":
        delete = _params(ev).get("delete")
        if isinstance(delete, dict):
            keys = [o.get("Key") for o in _as_list(delete.get("Object")) if isinstance(o, dict)]
            keys = [k for k in keys if isinstance(k, str)]
            if keys:
                return keys
    return [ev.key] if ev.key is not None else []


def control_kinds(ev) -> list[str]:
    """Which security controls this (successful) event disables."""
    action = ev.action
    if action == "DeleteBucketPublicAccessBlock":
        return ["public_access_block_deleted"]
    if action == "DeleteBucketEncryption":
        return ["default_encryption_deleted"]
    if ev.detail is None:
        return []  # access-log PUT of logging/versioning/BPA: the body (what changed) is not logged
    params = _params(ev)
    if action == "PutBucketLogging":
        if "logging" not in params:
            return []
        status = params.get("BucketLoggingStatus")
        enabled = isinstance(status, dict) and status.get("LoggingEnabled")
        return [] if enabled or params.get("logging") not in ("", None, [], {}) else ["logging_disabled"]
    if action == "PutBucketVersioning":
        conf = params.get("VersioningConfiguration")
        if not isinstance(conf, dict):
            return []
        kinds = []
        if conf.get("Status") in ("Suspended", "Disabled"):
            kinds.append("versioning_suspended")
        if conf.get("MfaDelete") == "Disabled":
            kinds.append("mfa_delete_disabled")
        return kinds
    if action == "PutBucketPublicAccessBlock":
        conf = params.get("PublicAccessBlockConfiguration")
        if isinstance(conf, dict):
            flags = [conf.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                           "RestrictPublicBuckets")]
            if any(f is False or f == "false" for f in flags):
                return ["public_access_block_disabled"]
    return []


class KeyPatterns:
    """Case-insensitive globs over decoded keys: suffix and substring globs use C string tests,
    the rest one regex; results cached per distinct key."""

    def __init__(self, patterns: Iterable[str]):
        suffixes, subs, others = [], [], []
        for pat in patterns:
            p = pat.lower()
            body = p[1:] if p.startswith("*") else None
            if body is not None and not any(c in body for c in "*?["):
                suffixes.append(body)
            elif p.startswith("*") and p.endswith("*") and len(p) > 2 and not any(c in p[1:-1] for c in "*?["):
                subs.append(re.escape(p[1:-1]))
            else:
                others.append(fnmatch.translate(p))
        self.suffixes = tuple(suffixes)
        self.subs = re.compile("|".join(subs)) if subs else None
        self.others = re.compile("|".join(others)) if others else None
        self.cache: dict[str, bool] = {}

    def __call__(self, key: str) -> bool:
        hit = self.cache.get(key)
        if hit is None:
            k = key.lower()
            hit = bool(k.endswith(self.suffixes) or (self.subs is not None and self.subs.search(k))
                       or (self.others is not None and self.others.match(k)))
            if len(self.cache) > 200_000:
                self.cache.clear()
            self.cache[key] = hit
        return hit


def glob_literals(patterns: Iterable[str]) -> tuple[str, ...] | None:
    """Prefilter literals for case-insensitive globs: the longest literal piece of each (a trailing
    piece gets the newline that ends a value in the joined batch); ``None`` when a glob has none."""
    out = []
    for pat in patterns:
        p = pat.lower()
        pieces = re.split(r"\*|\?|\[[^\]]*\]", p)
        if pieces[-1]:
            pieces[-1] += "\n"
        best = max(pieces, key=len)
        if not best.strip("\n"):
            return None
        out.append(best)
    return tuple(sorted(set(out)))


def probe_in(text: str | None) -> str | None:
    if text is None:
        return None
    for t in _PROBE_TRIGGERS:
        if t in text:
            m = WEB_PROBE.search(text)
            return m.group(0) if m else None
    return None


class GlobMap:
    """``{bucket_glob: values}`` looked up per bucket name (cached)."""

    def __init__(self, table: dict[str, list]):
        self.items = list(table.items())
        self.cache: dict[str | None, list | None] = {}

    def get(self, bucket: str | None):
        try:
            return self.cache[bucket]
        except KeyError:
            pass
        found = None
        if bucket is not None:
            for glob, values in self.items:
                if fnmatch.fnmatchcase(bucket, glob):
                    found = (found or []) + list(values)
        self.cache[bucket] = found
        return found


def parse_log_prefixes(prefixes: Iterable[str]) -> list[tuple[str | None, str]]:
    """``s3://bucket/prefix/``, ``bucket/prefix`` or ``/prefix`` (any bucket) -> (bucket, key prefix)."""
    out = []
    for p in prefixes:
        if p.startswith("s3://"):
            p = p[5:]
        if p.startswith("/"):
            out.append((None, p.lstrip("/")))
            continue
        bucket, _, prefix = p.partition("/")
        out.append((bucket or None, prefix))
    return out


# --------------------------------------------------------------------------- rules


def build_rules(settings: dict[str, Any]) -> list[Rule]:
    """The built-in rules, parametrized by the validated top-level config sections."""
    public = frozenset(settings.get("public_buckets") or ())
    public_globs = [b for b in public if any(c in b for c in "*?[")]
    public_cache: dict[str | None, bool] = {}
    sensitive = KeyPatterns(list(DEFAULT_SENSITIVE) + list(settings.get("sensitive_patterns") or ()))
    trusted = frozenset(settings.get("trusted_accounts") or ())
    log_prefixes = parse_log_prefixes(settings.get("log_prefixes") or ())
    allow = settings.get("allowlists") or {}
    ip_map = GlobMap({b: [ipaddress.ip_network(c, strict=False) for c in cidrs]
                      for b, cidrs in (allow.get("ip") or {}).items()})
    req_map = GlobMap(allow.get("requesters") or {})

    def object_ops(op, actions, is_object):
        return is_object

    def any_op(op, actions, is_object):
        return True

    # -- windowed rules: noise suppression parameters (config: [rules."<id>"] keys; see docs/rules.md)
    # AWS service principals (svc:..., AmazonS3, *.amazonaws.com) and aws-internal user agents act for
    # the bucket's own configuration (CloudFront origin fetches, log delivery, lifecycle): they never
    # raise a windowed rule unless skip_services = false.
    err_p = {"skip_services": True, "min_error_share": DEFAULT_MIN_ERROR_SHARE}
    enum_p = {"skip_services": True, "min_error_share": DEFAULT_MIN_ERROR_SHARE}
    down_p = {"skip_services": True, "object_cap": DEFAULT_OBJECT_CAP}
    del_p = {"skip_services": True}

    # -- access errors and enumeration
    def status_errors(first: int, second: int, p: dict, spec_ua_skip: bool):
        def match(ev):
            st = ev.http_status
            if st == first or st == second:
                if p["skip_services"] and ev.principal_type == "service":
                    return None
                if p["skip_services"] or spec_ua_skip:
                    ua = ev.user_agent
                    if ua is not None and ua.startswith("aws-internal"):
                        return None
                return ONE
            return None
        return match

    access_error = status_errors(403, 405, err_p, True)   # the issue skips aws-internal UAs here
    enumeration = status_errors(403, 404, enum_p, False)

    # -- volume
    def download(ev):
        st = ev.http_status
        if ev.error_code is None and (st is None or 200 <= st < 300):
            if down_p["skip_services"]:
                if ev.principal_type == "service":
                    return None
                ua = ev.user_agent
                if ua is not None and ua.startswith("aws-internal"):
                    return None
            sent = ev.bytes_sent or 0
            cap = down_p["object_cap"]
            # one object counts at most object_cap bytes: a restore of a few huge archives is not breadth
            return (sent if not cap or sent <= cap else cap, ev.key, None, None)
        return None

    def delete(ev):
        if not ok(ev) or (del_p["skip_services"] and _is_service(ev)):
            return None
        if ev.detail is not None and ev.action == "DeleteObjects":
            return (max(1, len(deleted_keys(ev))), None, None, None)
        return ONE

    # -- access shape
    def is_public(bucket):
        hit = public_cache.get(bucket)
        if hit is None:
            hit = bucket in public or any(fnmatch.fnmatchcase(bucket or "", g) for g in public_globs)
            public_cache[bucket] = hit
        return hit

    def anonymous(ev):
        st = ev.http_status
        if st is not None and 200 <= st < 400 and ev.error_code is None and not is_public(ev.bucket):
            return ONE
        return None

    def insecure(ev):
        host = ev.host_header
        # 18-to-23-field rows (before 2019) have no TLS column at all: host_header is None there.
        if ev.cipher_suite is None and host is not None and "s3-website" not in host:
            return ONE
        return None

    def sigv2(ev):
        return ONE

    def pentest(ev):
        return ONE

    def sensitive_access(ev):
        key = ev.key
        if key is not None and ok(ev) and sensitive(key):
            return ONE
        return None

    def web_probe(ev):
        text = ev.request_uri
        if text is None:
            text = ev.key
            if text is None:
                return None
        m = WEB_PROBE.search(text)
        if m is None:
            return None
        return (1, None, None, {"probe": m.group(0)})

    # -- configuration changes
    def policy_change(ev):
        action = ev.action
        if not ok(ev) or (action not in POLICY_ACTIONS and ev.operation not in BODYLESS_CONTROL_OPS):
            return None  # e.g. REST.PUT.ACL on an object key: PutObjectAcl
        if ev.detail is None:
            return (1, None, None, {"change": action or ev.operation, "body_logged": False})
        params = _params(ev)
        details: dict[str, Any] = {"change": action}
        severity = None
        if action == "PutBucketPolicy":
            policy = params.get("bucketPolicy")
            if policy_public(policy):
                details["made_public"] = True
                severity = "high"
            if trusted:
                ext = policy_external_accounts(policy, trusted, ev.bucket_owner)
                if ext:
                    details["untrusted_accounts"] = ext
                    severity = "high"
        elif action == "PutBucketAcl" and acl_public(params):
            details["made_public"] = True
            severity = "high"
        return (1, None, severity, details)

    def policy_ops(op, actions, is_object):
        return bool(actions & POLICY_ACTIONS) or op in BODYLESS_CONTROL_OPS

    def control(ev):
        if not ok(ev):
            return None
        kinds = control_kinds(ev)
        if not kinds:
            return None
        return (1, None, None, {"kinds": kinds})

    def bucket_deleted(ev):
        return ONE if ok(ev) else None

    def is_log_key(bucket, key):
        if key is None:
            return False
        if key.startswith("AWSLogs/") or "/AWSLogs/" in key:
            return True
        for b, prefix in log_prefixes:
            if (b is None or b == bucket) and key.startswith(prefix):
                return True
        return False

    def tamper_ops(op, actions, is_object):
        return bool(actions & (WRITE_ACTIONS | DELETE_ACTIONS)) and op != "REST.POST.MULTI_OBJECT_DELETE"

    def tampering(ev):
        if not ok(ev) or _is_service(ev) or ev.operation.startswith("S3."):
            return None
        bucket = ev.bucket
        keys = deleted_keys(ev) if ev.action in DELETE_ACTIONS else [ev.key]
        hits = [k for k in keys if is_log_key(bucket, k)]
        if not hits:
            return None
        return (len(hits), None, None, {"keys": hits[:5]})

    def ransom(ev):
        key = ev.key
        if key is None or not ok(ev):
            return None
        name = key.rstrip("/").rsplit("/", 1)[-1]
        if not name[-5:].lower().endswith(NOTE_EXTENSIONS) and "." in name[-6:]:
            return None  # notes are text/html/markdown (or have no extension)
        return ONE if RANSOM_NOTE.search(name) else None

    ip_cache: dict[tuple, bool] = {}

    def ip_allow(ev):
        ip = ev.remote_ip
        if ip is None or ev.principal_type == "service":
            return None
        ck = (ev.bucket, ip)
        bad = ip_cache.get(ck)
        if bad is None:
            nets = ip_map.get(ev.bucket)
            if nets is None:
                bad = False
            else:
                try:
                    addr = ipaddress.ip_address(ip)
                    bad = not any(addr.version == n.version and addr in n for n in nets)
                except ValueError:
                    bad = True
            if len(ip_cache) > 100_000:
                ip_cache.clear()
            ip_cache[ck] = bad
        return ONE if bad else None

    req_cache: dict[tuple, bool] = {}

    def unknown_req(ev):
        req = ev.requester
        if req is None or ev.error_code is not None or ev.principal_type == "service":
            return None
        ck = (ev.bucket, req)
        bad = req_cache.get(ck)
        if bad is None:
            globs = req_map.get(ev.bucket)
            bad = globs is not None and not any(fnmatch.fnmatchcase(req, g) for g in globs)
            if len(req_cache) > 100_000:
                req_cache.clear()
            req_cache[ck] = bad
        return ONE if bad else None

    def acts(*names):
        wanted = frozenset(names)
        return lambda op, actions, is_object: bool(actions & wanted)

    def download_title(ev):
        return f"Mass download by {actor_of(ev)}"

    rules = [
        Rule("s3.object_access_errors", "low", "Repeated 403/405 errors on object operations",
             gate="error", ops=object_ops, match=access_error, group=by_bucket_actor, window=60, threshold=5,
             dedup=60, measure="errors", params=err_p,
             description="403 or 405 on object operations, per bucket and actor (aws-internal user agents skipped); "
                         "errors >= min_error_share of the actor's requests in the window; AWS services skipped",
             peers="Panther AWS.S3.ServerAccess.Error"),
        Rule("s3.enumeration", "medium", "Enumeration: many 403/404 responses",
             gate="error", ops=any_op, match=enumeration, group=by_actor, window=5, threshold=20, dedup=60,
             measure="errors", params=enum_p,
             description="403 or 404 on any operation (bucket-level too) from one actor; errors >= min_error_share "
                         "of its requests in the window; AWS services skipped",
             peers="GuardDuty Discovery:S3/AnomalousBehavior, BucketEnumeration.Unusual (retired); Sigma aws_enum_buckets"),
        Rule("s3.mass_download", "high", "Mass download", gate="op", ops=acts("GetObject"), match=download,
             group=by_actor, window=10, threshold=GIB, distinct=500, dedup=60, measure="bytes",
             title_fn=download_title, params=down_p, measure_of=sent_bytes,
             description="one actor downloads >= threshold bytes (GetObject bytes_sent, each object counting at most "
                         "object_cap) or >= distinct objects; AWS services skipped",
             peers="Panther AWS.S3.LargeDownload (query); GuardDuty Exfiltration:S3/AnomalousBehavior"),
        Rule("s3.mass_delete", "high", "Mass delete", gate="op",
             ops=lambda op, actions, is_object: bool(actions & DELETE_ACTIONS) and op != "REST.POST.MULTI_OBJECT_DELETE",
             match=delete, group=by_actor, window=10, threshold=50, dedup=60, measure="objects_deleted",
             params=del_p,
             description="one actor deletes >= threshold objects (each BATCH.DELETE.OBJECT row, DeleteObject, "
                         "key of a CloudTrail DeleteObjects); AWS services skipped",
             peers="Panther AWS.S3.DeleteObject, AWS.S3.DeleteObjects; GuardDuty Impact:S3/AnomalousBehavior.Delete"),
        Rule("s3.anonymous_access", "medium", "Successful anonymous request", gate="anon",
             ops=lambda op, actions, is_object: not op.startswith("WEBSITE."), match=anonymous,
             group=by_bucket_actor, dedup=60,
             description="a 2xx/3xx request without credentials, except buckets in public_buckets and website endpoints",
             peers="Panther AWS.S3.ServerAccess.Unauthenticated"),
        Rule("s3.insecure_transport", "low", "Object request without TLS", gate="notls",
             ops=lambda op, actions, is_object: is_object and not op.startswith(("S3.", "WEBSITE.", "BATCH."))
             and not op.endswith("_GET"),
             match=insecure, group=by_bucket_actor, dedup=720,
             description="access-log object operation over plain HTTP (lifecycle S3.*, batch rows and website "
                         "endpoints excluded)",
             peers="Panther AWS.S3.ServerAccess.Insecure; Security Hub S3.5; Prowler s3_bucket_secure_transport_policy"),
        Rule("s3.sigv2_request", "low", "Request signed with SigV2", gate="sigv2", ops=any_op, match=sigv2,
             group=by_bucket_actor, dedup=60,
             description="signature_version SigV2 (deprecated; old or unusual tooling)",
             peers="(none: s3tail)"),
        Rule("s3.pentest_user_agent", "medium", "Penetration-testing or S3 scanner user agent", gate="ua",
             ops=any_op, match=pentest, group=by_actor, dedup=60, ua_test=lambda ua: PENTEST_UA.search(ua) is not None,
             description="Kali, Parrot, Pentoo Linux and S3 scanners (s3scanner, bucket_finder, AWSBucketDump, "
                         "slurp, s3recon, cloud_enum, lazys3, pacu, ScoutSuite, ...)",
             peers="GuardDuty PenTest:S3/KaliLinux, PenTest:S3/ParrotLinux, PenTest:S3/PentooLinux"),
        Rule("s3.sensitive_object_access", "medium", "Access to a sensitive-looking object", gate="op",
             ops=lambda op, actions, is_object: is_object and not op.startswith(("S3.", "BATCH.")),
             match=sensitive_access, group=by_bucket_actor, dedup=60,
             prefilter=("key", glob_literals(list(DEFAULT_SENSITIVE) + list(settings.get("sensitive_patterns") or ()))),
             description="successful object operation on a key matching sensitive_patterns (case-insensitive)",
             peers="(none: s3tail; GuardDuty Exfiltration:S3/* is volume-based)"),
        Rule("s3.web_attack_probe", "medium", "Web attack probe in request", gate="op", ops=any_op,
             match=web_probe, group=by_actor, dedup=60, prefilter=("uri", PROBE_LITERALS),
             description="path traversal, <?php, /etc/passwd, <script, union select, ${jndi: ... in the URI or key",
             peers="(none: s3tail)"),
        Rule("s3.bucket_policy_change", "medium", "Bucket access configuration changed", gate="op",
             ops=policy_ops, match=policy_change, group=by_bucket_actor, dedup=60,
             description="bucket policy, ACL, public access block, CORS, lifecycle, replication or ownership "
                         "changed; high when a PutBucketPolicy/PutBucketAcl makes the bucket public",
             peers="Panther AWS.S3.BucketPolicyModified, AWS.CloudTrail.ResourceMadePublic; GuardDuty "
                   "Policy:S3/BucketAnonymousAccessGranted, Impact:S3/AnomalousBehavior.Permission"),
        Rule("s3.security_control_disabled", "medium", "Security control disabled", gate="op",
             ops=lambda op, actions, is_object: bool(actions & CONTROL_ACTIONS), match=control,
             group=by_bucket_actor, window=90, threshold=2, dedup=90, mode="escalate",
             description="logging disabled, versioning suspended, MFA delete disabled, public access block or "
                         "default encryption deleted; critical when >= threshold kinds on one bucket by one actor "
                         "within the window",
             peers="Panther AWS.S3.SecurityControlDisabling, DisableBucketLogging, SuspendVersioning, "
                   "DisableMfaDelete, DeletePublicAccessBlock, DeleteBucketEncryption; GuardDuty "
                   "Stealth:S3/ServerAccessLoggingDisabled, Policy:S3/BucketBlockPublicAccessDisabled"),
        Rule("s3.bucket_deleted", "high", "Bucket deleted", gate="op", ops=acts("DeleteBucket"),
             match=bucket_deleted, group=by_bucket_actor, dedup=60,
             description="a successful DeleteBucket", peers="Panther AWS.S3.BucketDeleted; Sigma aws_cloudtrail_bucket_deleted"),
        Rule("s3.log_tampering", "high", "Log objects deleted or overwritten", gate="op", ops=tamper_ops,
             match=tampering, group=by_bucket_actor, dedup=60, measure="log_objects",
             description="delete or overwrite of keys under AWSLogs/ or log_prefixes by a non-service principal",
             peers="Panther AWS.CloudTrail.ShortLifecycle (related); GuardDuty AttackSequence:S3/CompromisedData"),
        Rule("s3.ransomware_note", "high", "Ransom-note-like upload", gate="op",
             ops=lambda op, actions, is_object: bool(actions & UPLOAD_ACTIONS), match=ransom,
             group=by_bucket_actor, dedup=60, prefilter=("key", RANSOM_LITERALS),
             description="upload named like a ransom note (README_FOR_DECRYPT, HOW_TO_RECOVER, *ransom*, ...)",
             peers="Panther AWS.S3.RansomwareNoteUpload"),
        Rule("s3.ip_not_allowlisted", "medium", "Request from a non-allowlisted IP", gate="all", ops=any_op,
             match=ip_allow, group=by_bucket_ip, dedup=60, inert=not ip_map.items,
             description="remote IP outside [allowlists.ip] CIDRs of the bucket (inert until configured)",
             peers="Panther AWS.S3.ServerAccess.IPWhitelist"),
        Rule("s3.unknown_requester", "medium", "Request by a requester not allowlisted", gate="all", ops=any_op,
             match=unknown_req, group=by_bucket_actor, dedup=60, inert=not req_map.items,
             description="authenticated request without error whose requester matches none of the bucket's "
                         "[allowlists.requesters] globs (inert until configured)",
             peers="Panther AWS.S3.ServerAccess.UnknownRequester"),
    ]
    return rules


RULE_IDS = tuple(r.id for r in build_rules({}))
