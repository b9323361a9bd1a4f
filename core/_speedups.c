/*
 * s3tail.core._speedups: the common-shape fast path of s3tail.core.access_log.parse_line in C.
 *
 * try_parse(line, log_object, log_line, offset, redact) returns the finished Event, or None when the
 * line is not one this code is sure to read exactly as the pure-Python parser does (not one of the two
 * common shapes, any field that would raise MalformedError, a time stamp it does not parse itself, an
 * operation not yet validated by the Python side, a non-bool redact, a str subclass ...).
 * parse(...) is the same, but runs the pure-Python parser itself on None, so every unusual line gets
 * the reference behaviour, errors included. parse_block(data, ...) splits bytes into lines, decodes
 * them as the reader does (UTF-8, backslashreplace) and parses each one.
 *
 * The two shapes: the usual one (request URI, referrer and user agent quoted; the Python fast path)
 * and the lifecycle one (bare request URI "-", referrer and user agent quoted; the Python slow path).
 *
 * Identity decoding, action mapping and the non-ASCII cases of URL unquoting and URI redaction are the
 * very Python functions given to configure(); the C code caches their answers, and does ASCII
 * unquoting and redaction itself (same results, checked by tests/test_speedups.py). Strings that
 * repeat (bucket, requester, operation, user agent, TLS fields ...) are shared between events.
 *
 * S3TAIL_PURE_PYTHON=1 in the environment makes access_log.py skip this module entirely.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define N_TAIL 10          /* version_id .. source_region */
#define MAX_ACT_CACHE 10000
#define MAX_REDACT 32      /* more secret parameters than this in one URI: let redact_uri do it */

static struct {
    PyTypeObject *event_type;
    Py_ssize_t n_fields;
    int direct_alloc;          /* Event has the exact tuple layout: fill it in place */
    PyObject *time_cache;      /* dict stamp -> (iso, epoch), shared with access_log.parse_time */
    PyObject *ok_ops;          /* set of operations access_log._check_op accepted */
    PyObject *ident_cache;     /* dict requester|None -> identity 4-tuple (identity._cache) */
    PyObject *decode_requester, *action_for, *unquote, *unquote_plus, *redact_uri;
    PyObject *fallback;        /* access_log.parse_line_pure */
    PyObject *uri_ops;         /* operations whose action depends on the request URI */
    PyObject *act[2];          /* own caches: op -> action, without / with a key */
    PyObject *source;          /* "s3access" */
    PyObject *dash, *zero, *minus_one, *redacted;   /* defaults of parse(); "REDACTED" */
    /* the last time stamp seen (25 code points: dd/Mon/yyyy:hh:mm:ss then +hhmm) and its answer */
    Py_UCS4 last_stamp[25];
    PyObject *last_iso, *last_epoch;
} S;

static const char *MONTHS[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

typedef struct { Py_ssize_t a, b; } Span;   /* [a, b) in code points */

#define CH(i) PyUnicode_READ(kind, data, (i))

static int
is_dash(int kind, const void *data, Span s)
{
    return s.b - s.a == 1 && CH(s.a) == '-';
}

/* Index of the first c in [a, b), or -1; memchr for the common one-byte strings. */
static Py_ssize_t
find_ch(int kind, const void *data, Py_ssize_t a, Py_ssize_t b, Py_UCS4 c)
{
    if (a >= b)
        return -1;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        const Py_UCS1 *r = memchr(p + a, (int)c, (size_t)(b - a));
        return r ? r - p : -1;
    }
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *p = (const Py_UCS2 *)data;
        for (Py_ssize_t i = a; i < b; i++)
            if (p[i] == c)
                return i;
        return -1;
    }
    const Py_UCS4 *p = (const Py_UCS4 *)data;
    for (Py_ssize_t i = a; i < b; i++)
        if (p[i] == c)
            return i;
    return -1;
}

static int
span_has(int kind, const void *data, Span s, Py_UCS4 c)
{
    return find_ch(kind, data, s.a, s.b, c) >= 0;
}

/*
 * Split [a, b) at each ' ' into out[0..max-1] the way str.split(" ") does; returns the number of
 * parts, or max + 1 when there are more than max.
 */
static Py_ssize_t
split_sp(int kind, const void *data, Py_ssize_t a, Py_ssize_t b, Span *out, Py_ssize_t max)
{
    Py_ssize_t n = 0;
    for (;;) {
        Py_ssize_t i = find_ch(kind, data, a, b, ' ');
        if (n == max)
            return max + 1;
        out[n].a = a;
        out[n++].b = i < 0 ? b : i;
        if (i < 0)
            return n;
        a = i + 1;
    }
}

static int
span_eq_ascii(int kind, const void *data, Span s, const char *lit)
{
    Py_ssize_t n = (Py_ssize_t)strlen(lit);
    if (s.b - s.a != n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (CH(s.a + i) != (Py_UCS4)(unsigned char)lit[i])
            return 0;
    return 1;
}

/* 1..18 ASCII digits -> value; 0 when not (the caller falls back to Python for anything else). */
static int
span_uint(int kind, const void *data, Span s, long long *out)
{
    Py_ssize_t n = s.b - s.a;
    long long v = 0;
    if (n < 1 || n > 18)
        return 0;
    for (Py_ssize_t i = s.a; i < s.b; i++) {
        Py_UCS4 c = CH(i);
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (long long)(c - '0');
    }
    *out = v;
    return 1;
}

static int
digits(const Py_UCS4 *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (int)(p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void
civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int
is_leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * st: dd/Mon/yyyy:hh:mm:ss (20) then sign hh mm (5). Sets new references in *iso / *epoch and
 * returns 1, or returns 0 (not handled here: the caller falls back), or -1 on a Python error.
 * Only strict ASCII digits and years 1000..9999 (before and after the offset) are handled, which
 * is where datetime/strftime in access_log.parse_time give the same answer.
 */
static int
parse_stamp(const Py_UCS4 *st, PyObject **iso, PyObject **epoch)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int day, year, hh, mi, ss, oh, om, mon = -1;
    if (st[2] != '/' || st[6] != '/' || st[11] != ':' || st[14] != ':' || st[17] != ':')
        return 0;
    for (int i = 0; i < 12; i++)
        if (st[3] == (Py_UCS4)MONTHS[i][0] && st[4] == (Py_UCS4)MONTHS[i][1] && st[5] == (Py_UCS4)MONTHS[i][2]) {
            mon = i + 1;
            break;
        }
    if (mon < 0 || !digits(st, 2, &day) || !digits(st + 7, 4, &year) || !digits(st + 12, 2, &hh)
            || !digits(st + 15, 2, &mi) || !digits(st + 18, 2, &ss) || !digits(st + 21, 2, &oh)
            || !digits(st + 23, 2, &om) || (st[20] != '+' && st[20] != '-'))
        return 0;
    if (year < 1000 || year > 9999 || hh > 23 || mi > 59 || ss > 59 || day < 1
            || day > mdays[mon - 1] + (mon == 2 && is_leap(year)))
        return 0;
    long long offset = ((long long)oh * 3600 + om * 60) * (st[20] == '+' ? 1 : -1);
    long long ep = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mi * 60 + ss - offset;
    long long y = year;
    unsigned m = (unsigned)mon, d = (unsigned)day;
    if (offset) {
        long long days = ep >= 0 ? ep / 86400 : -((-ep + 86399) / 86400);
        long long sod = ep - days * 86400;
        civil_from_days(days, &y, &m, &d);
        if (y < 1000 || y > 9999)
            return 0;
        hh = (int)(sod / 3600);
        mi = (int)(sod % 3600 / 60);
        ss = (int)(sod % 60);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", y, m, d, hh, mi, ss);
    if (n != 20)
        return 0;
    *iso = PyUnicode_FromStringAndSize(buf, n);
    if (*iso == NULL)
        return -1;
    *epoch = PyLong_FromLongLong(ep);
    if (*epoch == NULL) {
        Py_CLEAR(*iso);
        return -1;
    }
    return 1;
}

/* 1 + new refs (iso, epoch) / 0 not handled / -1 error. h2 = "[dd/Mon/yyyy:hh:mm:ss", h3 = "+hhmm]". */
static int
time_of(PyObject *line, int kind, const void *data, Span h2, Span h3, PyObject **iso, PyObject **epoch)
{
    Py_UCS4 st[25];
    if (h2.b - h2.a != 21 || h3.b - h3.a != 6)
        return 0;
    for (int i = 0; i < 20; i++)
        st[i] = CH(h2.a + 1 + i);
    for (int i = 0; i < 5; i++)
        st[20 + i] = CH(h3.a + i);
    if (S.last_iso != NULL && memcmp(st, S.last_stamp, sizeof st) == 0) {
        *iso = Py_NewRef(S.last_iso);
        *epoch = Py_NewRef(S.last_epoch);
        return 1;
    }
    int r = parse_stamp(st, iso, epoch);
    if (r == 0) {
        /* Forms parse_time answered before (it caches them): look up its cache, same key it uses. */
        PyObject *left = PyUnicode_Substring(line, h2.a + 1, h2.b);
        PyObject *right = left ? PyUnicode_Substring(line, h3.a, h3.b - 1) : NULL;
        PyObject *key = NULL;
        if (right) {
            PyObject *sp = PyUnicode_FromOrdinal(' ');
            PyObject *tmp = sp ? PyUnicode_Concat(left, sp) : NULL;
            key = tmp ? PyUnicode_Concat(tmp, right) : NULL;
            Py_XDECREF(tmp);
            Py_XDECREF(sp);
        }
        Py_XDECREF(left);
        Py_XDECREF(right);
        if (key == NULL)
            return -1;
        PyObject *hit = PyDict_GetItemWithError(S.time_cache, key);
        Py_DECREF(key);
        if (hit == NULL)
            return PyErr_Occurred() ? -1 : 0;
        if (!PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 2)
            return 0;
        *iso = Py_NewRef(PyTuple_GET_ITEM(hit, 0));
        *epoch = Py_NewRef(PyTuple_GET_ITEM(hit, 1));
        return 1;
    }
    if (r < 0)
        return -1;
    memcpy(S.last_stamp, st, sizeof st);
    Py_XSETREF(S.last_iso, Py_NewRef(*iso));
    Py_XSETREF(S.last_epoch, Py_NewRef(*epoch));
    return 1;
}


/* ---- shared strings: values that repeat (bucket, requester, user agent ...) are built once ---- */

enum { IC_OWNER, IC_BUCKET, IC_IP, IC_REQUESTER, IC_OP, IC_ERR, IC_UA, IC_REF, IC_TAIL, N_IC };
#define IC_BITS 12
#define IC_SIZE (1 << IC_BITS)
#define IC_MAXLEN 512
static PyObject *icache[N_IC][IC_SIZE];

static void
icache_clear(void)
{
    for (int i = 0; i < N_IC; i++)
        for (int j = 0; j < IC_SIZE; j++)
            Py_CLEAR(icache[i][j]);
}

/* New reference to the text of span s, shared with earlier equal values of the same field. */
static PyObject *
span_str(int ic, PyObject *line, int kind, const void *data, Span s)
{
    Py_ssize_t n = s.b - s.a;
    if (kind != PyUnicode_1BYTE_KIND || n < 2 || n > IC_MAXLEN)
        return PyUnicode_Substring(line, s.a, s.b);
    const unsigned char *p = (const unsigned char *)data + s.a;
    /* A cheap hash of the length and a few bytes: a collision only costs a rebuilt string. */
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull;
    if (n >= 8) {
        Py_ssize_t last = n - 8;
        Py_ssize_t at[4] = {0, last / 3, 2 * last / 3, last};
        for (int i = 0; i < 4; i++) {
            uint64_t w;
            memcpy(&w, p + at[i], 8);
            h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++)
            h = (h ^ p[i]) * 0xFF51AFD7ED558CCDull;
    }
    h ^= h >> 29;
    PyObject **slot = &icache[ic][h & (IC_SIZE - 1)];
    PyObject *o = *slot;
    /* Only one-byte strings are stored, so comparing bytes compares the text. */
    if (o != NULL && PyUnicode_GET_LENGTH(o) == n && memcmp(PyUnicode_1BYTE_DATA(o), p, (size_t)n) == 0)
        return Py_NewRef(o);
    if ((o = PyUnicode_Substring(line, s.a, s.b)) == NULL)
        return NULL;
    Py_XSETREF(*slot, Py_NewRef(o));
    return o;
}

static PyObject *
str_or_none(int ic, PyObject *line, int kind, const void *data, Span s)
{
    if (is_dash(kind, data, s))
        return Py_NewRef(Py_None);
    return ic < 0 ? PyUnicode_Substring(line, s.a, s.b) : span_str(ic, line, kind, data, s);
}

/* ---- redaction (redact.redact_uri), ASCII text only ---- */

static int
ascii_lower(Py_UCS4 c)
{
    return c >= 'A' && c <= 'Z' ? (int)(c + ('a' - 'A')) : (int)c;
}

/* Index just after "NAME=" when one of the secret parameter names (any ASCII case) starts at i, or -1. */
static Py_ssize_t
secret_at(int kind, const void *data, Py_ssize_t i, Py_ssize_t end)
{
    static const char *names[3] = {"x-amz-signature", "x-amz-security-token", "signature"};
    for (int k = 0; k < 3; k++) {
        Py_ssize_t n = (Py_ssize_t)strlen(names[k]), j = 0;
        if (i + n >= end)
            continue;
        while (j < n && ascii_lower(CH(i + j)) == names[k][j])
            j++;
        if (j == n && CH(i + n) == '=')
            return i + n + 1;
    }
    return -1;
}

/*
 * What re.sub(r"(?i)((?:^|[?&;])(?:x-amz-signature|x-amz-security-token|signature)=)[^&;\s\"#]*",
 * r"\1REDACTED", text) does, on ASCII text: scan left to right, a match starts at the text's start or
 * at one of ?&; and its value runs to the next &;"# or white space; the scan resumes after the value.
 * New reference; the span's own text (shared via ic) when nothing is secret; NULL on error.
 */
static PyObject *
redact_span(int ic, PyObject *line, int kind, const void *data, Span s)
{
    Span val[MAX_REDACT];
    int nv = 0;
    Py_ssize_t pos = s.a;
    while (pos < s.b) {
        Py_ssize_t vs = pos == s.a ? secret_at(kind, data, pos, s.b) : -1;
        Py_UCS4 c = CH(pos);
        if (vs < 0 && (c == '?' || c == '&' || c == ';'))
            vs = secret_at(kind, data, pos + 1, s.b);
        if (vs < 0) {
            pos++;
            continue;
        }
        Py_ssize_t ve = vs;
        while (ve < s.b) {
            Py_UCS4 d = CH(ve);
            if (d == '&' || d == ';' || d == '"' || d == '#' || Py_UNICODE_ISSPACE(d))
                break;
            ve++;
        }
        if (nv == MAX_REDACT) {
            PyObject *v = PyUnicode_Substring(line, s.a, s.b);
            PyObject *r = v ? PyObject_CallOneArg(S.redact_uri, v) : NULL;
            Py_XDECREF(v);
            return r;
        }
        val[nv].a = vs;
        val[nv++].b = ve;
        pos = ve;
    }
    if (nv == 0)
        return ic < 0 ? PyUnicode_Substring(line, s.a, s.b) : span_str(ic, line, kind, data, s);
    Py_ssize_t n = s.b - s.a;
    for (int i = 0; i < nv; i++)
        n += 8 - (val[i].b - val[i].a);
    PyObject *out = PyUnicode_New(n, 127);
    if (out == NULL)
        return NULL;
    Py_UCS1 *w = PyUnicode_1BYTE_DATA(out);
    const Py_UCS1 *r = (const Py_UCS1 *)data;
    Py_ssize_t from = s.a;
    for (int i = 0; i < nv; i++) {
        memcpy(w, r + from, (size_t)(val[i].a - from));
        w += val[i].a - from;
        memcpy(w, "REDACTED", 8);
        w += 8;
        from = val[i].b;
    }
    memcpy(w, r + from, (size_t)(s.b - from));
    return out;
}

/* A URI or referrer: new ref to the value (redacted when asked), or NULL on error. */
static PyObject *
uri_value(int ic, PyObject *line, int kind, const void *data, Span s, int redact, int ascii)
{
    if (!redact || !span_has(kind, data, s, '='))
        return ic < 0 ? PyUnicode_Substring(line, s.a, s.b) : span_str(ic, line, kind, data, s);
    if (ascii)
        return redact_span(ic, line, kind, data, s);
    PyObject *v = PyUnicode_Substring(line, s.a, s.b);
    if (v == NULL)
        return NULL;
    PyObject *r = PyObject_CallOneArg(S.redact_uri, v);
    Py_DECREF(v);
    return r;
}

/* ---- URL unquoting (urllib.parse.unquote / unquote_plus), ASCII text only ---- */

static int
hexval(Py_UCS4 c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* unquote_to_bytes(text).decode("utf-8", "replace"), '+' read as a space first when plus is set. */
static PyObject *
unquote_span(int kind, const void *data, Span s, int plus)
{
    char stack[512], *buf = stack;
    Py_ssize_t n = s.b - s.a, j = 0;
    if (n > (Py_ssize_t)sizeof stack && (buf = PyMem_Malloc((size_t)n)) == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = s.a; i < s.b; i++) {
        Py_UCS4 c = CH(i);
        int hi, lo;
        if (c == '%' && i + 2 < s.b && (hi = hexval(CH(i + 1))) >= 0 && (lo = hexval(CH(i + 2))) >= 0) {
            buf[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            buf[j++] = plus && c == '+' ? ' ' : (char)c;
        }
    }
    PyObject *r = PyUnicode_DecodeUTF8(buf, j, "replace");
    if (buf != stack)
        PyMem_Free(buf);
    return r;
}

static PyObject *
num_or_none(long long v, int present)
{
    return present ? PyLong_FromLongLong(v) : Py_NewRef(Py_None);
}

static int
is_sig(int kind, const void *data, Span s)
{
    return span_eq_ascii(kind, data, s, "SigV2") || span_eq_ascii(kind, data, s, "SigV4")
        || span_eq_ascii(kind, data, s, "SigV4a") || span_eq_ascii(kind, data, s, "-");
}

static PyObject *
action_of(PyObject *op, int has_key, PyObject *uri)
{
    PyObject *cache = S.act[has_key];
    int dependent = PySet_Contains(S.uri_ops, op);
    if (dependent < 0)
        return NULL;
    if (!dependent) {
        PyObject *hit = PyDict_GetItemWithError(cache, op);
        if (hit != NULL)
            return Py_NewRef(hit);
        if (PyErr_Occurred())
            return NULL;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(S.action_for, op, has_key ? Py_True : Py_False, uri, NULL);
    if (r != NULL && !dependent && PyDict_GET_SIZE(cache) < MAX_ACT_CACHE && PyDict_SetItem(cache, op, r) < 0)
        Py_CLEAR(r);
    return r;
}

enum {
    F_SOURCE, F_TIME, F_BUCKET, F_KEY, F_KEY_RAW, F_OP, F_ACTION, F_REQUESTER, F_IP, F_REQID,
    F_STATUS, F_ERR, F_SENT, F_SIZE, F_TOTAL, F_TURN, F_REF, F_UA, F_URI, F_TAIL0,
    F_OWNER = F_TAIL0 + N_TAIL, F_EXTRA, F_ACCOUNT, F_PTYPE, F_PNAME, F_SESSION, F_LOG_OBJECT,
    F_LOG_LINE, F_TS, F_RAW, F_OFFSET, F_DETAIL, N_FIELDS
};

static PyObject *
make_event(PyObject **v)
{
    PyObject *ev;
    if (S.direct_alloc) {
        ev = S.event_type->tp_alloc(S.event_type, N_FIELDS);
        if (ev == NULL)
            return NULL;
        for (int i = 0; i < N_FIELDS; i++) {
            PyTuple_SET_ITEM(ev, i, v[i]);
            v[i] = NULL;
        }
        /* An event refers only to strings, ints, None and its own new list of strings: it cannot be
           part of a reference cycle unless someone puts it into its own extra_fields. Keeping a
           million of them out of the cyclic GC's scans saves a third of the parse time. */
        PyObject_GC_UnTrack(ev);
        return ev;
    }
    PyObject *t = PyTuple_New(N_FIELDS);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < N_FIELDS; i++) {
        PyTuple_SET_ITEM(t, i, v[i]);
        v[i] = NULL;
    }
    PyObject *args = PyTuple_Pack(1, t);
    Py_DECREF(t);
    if (args == NULL)
        return NULL;
    ev = PyTuple_Type.tp_new(S.event_type, args, NULL);
    Py_DECREF(args);
    return ev;
}

/* Where the fields of one line are: [a, b) spans into the line. */
typedef struct {
    Span owner, bucket, t_day, t_zone, ip, requester, reqid, op, key, uri, status, err, sent, size,
         total, turn, ref, ua;
    Py_ssize_t tail_from;      /* first code point of the tail (version id ...) */
} Layout;

/*
 * The usual shape, as the Python fast path reads it: line.split('"') has 7 parts, parts[4] == " ",
 * parts[0].split(" ") has 10 parts (the last empty, [2] starts "[", [3] ends "]"), parts[2].split(" ")
 * has 8 parts (first and last empty), parts[6] starts with one space (then t[1:].split(" ")).
 * q holds the positions of the six quotes.
 */
static int
layout_usual(int kind, const void *data, Py_ssize_t end, const Py_ssize_t *q, Layout *L)
{
    Span h[10], m8[8];
    if (q[4] != q[3] + 2 || CH(q[3] + 1) != ' ')
        return 0;
    if (split_sp(kind, data, 0, q[0], h, 10) != 10 || h[9].a != h[9].b
            || h[2].b == h[2].a || CH(h[2].a) != '[' || h[3].b == h[3].a || CH(h[3].b - 1) != ']')
        return 0;
    if (split_sp(kind, data, q[1] + 1, q[2], m8, 8) != 8 || m8[0].a != m8[0].b || m8[7].a != m8[7].b)
        return 0;
    if (q[5] + 1 >= end || CH(q[5] + 1) != ' ')
        return 0;   /* an empty tail is the 17-field MalformedError: Python's job */
    L->owner = h[0]; L->bucket = h[1]; L->t_day = h[2]; L->t_zone = h[3]; L->ip = h[4];
    L->requester = h[5]; L->reqid = h[6]; L->op = h[7]; L->key = h[8];
    L->uri = (Span){q[0] + 1, q[1]};
    L->status = m8[1]; L->err = m8[2]; L->sent = m8[3]; L->size = m8[4]; L->total = m8[5]; L->turn = m8[6];
    L->ref = (Span){q[2] + 1, q[3]};
    L->ua = (Span){q[4] + 1, q[5]};
    L->tail_from = q[5] + 2;
    return 1;
}

/*
 * The lifecycle shape (bare request URI), as the Python slow path reads it: four quotes, q[2] == q[1]+2
 * with a space between; before q[0] exactly 16 non-empty fields without white space other than the
 * single separating spaces, then one space ([time] as two fields: "[" + 20 and 5 + "]"); after q[3]
 * the tail, leading spaces stripped. Then _HEAD_RE, _URI_RE and _split_ref_ua find the same fields.
 */
static int
layout_bare_uri(int kind, const void *data, Py_ssize_t end, const Py_ssize_t *q, Layout *L)
{
    Span t[17];
    if (q[2] != q[1] + 2 || CH(q[1] + 1) != ' ')
        return 0;
    for (Py_ssize_t i = 0; i < q[0]; i++) {
        Py_UCS4 c = CH(i);
        if (c != ' ' && Py_UNICODE_ISSPACE(c))
            return 0;
    }
    if (split_sp(kind, data, 0, q[0], t, 17) != 17 || t[16].a != t[16].b)
        return 0;
    for (int i = 0; i < 16; i++)
        if (t[i].a == t[i].b)
            return 0;
    if (CH(t[2].a) != '[' || CH(t[3].b - 1) != ']')
        return 0;
    L->owner = t[0]; L->bucket = t[1]; L->t_day = t[2]; L->t_zone = t[3]; L->ip = t[4];
    L->requester = t[5]; L->reqid = t[6]; L->op = t[7]; L->key = t[8]; L->uri = t[9];
    L->status = t[10]; L->err = t[11]; L->sent = t[12]; L->size = t[13]; L->total = t[14]; L->turn = t[15];
    L->ref = (Span){q[0] + 1, q[1]};
    L->ua = (Span){q[2] + 1, q[3]};
    Py_ssize_t i = q[3] + 1;
    while (i < end && CH(i) == ' ')
        i++;
    if (i >= end)
        return 0;   /* no tail: Python's MalformedError */
    L->tail_from = i;
    return 1;
}

/* Leave the line to the pure-Python parser. */
#define FALLBACK() do { result = Py_NewRef(Py_None); goto done; } while (0)
/* Store a new reference in slot i, or bail out with the Python error set. */
#define SET(i, expr) do { if ((v[i] = (expr)) == NULL) goto done; } while (0)

/* The C parse: new ref to an Event, None (use the Python parser), or NULL with an error set. */
static PyObject *
parse_c(PyObject *line, PyObject *log_object, PyObject *log_line, PyObject *offset_o, PyObject *redact_o)
{
    PyObject *v[N_FIELDS] = {NULL};
    PyObject *result = NULL, *op = NULL, *requester = NULL, *ident = NULL;
    Span tail_buf[N_TAIL + 8], *tail = tail_buf;
    Layout L;

    if (S.event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "s3tail.core._speedups.configure() was not called");
        return NULL;
    }
    if (!PyUnicode_CheckExact(line) || (redact_o != Py_True && redact_o != Py_False))
        return Py_NewRef(Py_None);
    int redact = redact_o == Py_True;
    int kind = PyUnicode_KIND(line);
    const void *data = PyUnicode_DATA(line);
    int ascii = PyUnicode_IS_ASCII(line);
    Py_ssize_t end = PyUnicode_GET_LENGTH(line);

    /* line = line.rstrip() */
    while (end > 0 && Py_UNICODE_ISSPACE(CH(end - 1)))
        end--;
    /* the quotes: six (usual) or four (bare request URI) */
    Py_ssize_t q[6];
    Py_ssize_t from = 0;
    int nq = 0;
    while (nq < 6 && (q[nq] = find_ch(kind, data, from, end, '"')) >= 0)
        from = q[nq++] + 1;
    if (nq == 6 && find_ch(kind, data, from, end, '"') >= 0)
        return Py_NewRef(Py_None);
    if (nq == 6 ? !layout_usual(kind, data, end, q, &L) : nq != 4 || !layout_bare_uri(kind, data, end, q, &L))
        return Py_NewRef(Py_None);

    Py_ssize_t ntail = split_sp(kind, data, L.tail_from, end, tail_buf, N_TAIL + 8);
    if (ntail > N_TAIL + 8) {
        ntail = 1;
        for (Py_ssize_t i = L.tail_from; (i = find_ch(kind, data, i, end, ' ')) >= 0; i++)
            ntail++;
        if ((tail = PyMem_New(Span, ntail)) == NULL)
            return PyErr_NoMemory();
        split_sp(kind, data, L.tail_from, end, tail, ntail);
    }

    int has_op = !is_dash(kind, data, L.op), has_key = !is_dash(kind, data, L.key);

    /* ---- validation first: anything that would raise goes to Python ---- */
    long long nums[5] = {0};
    int present[5];
    Span ns[5] = {L.status, L.sent, L.size, L.total, L.turn};
    for (int i = 0; i < 5; i++) {
        present[i] = !is_dash(kind, data, ns[i]);
        if (present[i] && !span_uint(kind, data, ns[i], &nums[i]))
            FALLBACK();
    }
    if (present[0] && L.status.b - L.status.a != 3)
        FALLBACK();
    if (has_op) {
        if ((op = span_str(IC_OP, line, kind, data, L.op)) == NULL)
            goto done;
        int ok = PySet_Contains(S.ok_ops, op);
        if (ok < 0)
            goto done;
        if (!ok)
            FALLBACK();   /* first sight: Python validates it and remembers it in _ok_ops */
    }
    {
        int r = time_of(line, kind, data, L.t_day, L.t_zone, &v[F_TIME], &v[F_TS]);
        if (r < 0)
            goto done;
        if (r == 0)
            FALLBACK();
    }

    /* ---- tail: a HostId holding a space is rejoined; pad to version_id..source_region ---- */
    Span tv[N_TAIL];
    if (ntail > 3 && !is_sig(kind, data, tail[2]) && is_sig(kind, data, tail[3])) {
        tail[1].b = tail[2].b;                       /* the two halves are one space apart */
        for (Py_ssize_t i = 2; i + 1 < ntail; i++)
            tail[i] = tail[i + 1];
        ntail--;
    }
    for (Py_ssize_t i = 0; i < N_TAIL; i++)
        if (i < ntail)
            tv[i] = tail[i];
        else
            tv[i].a = tv[i].b = -1;                  /* padding: "-" -> None */

    /* ---- values ---- */
    if (has_key) {
        SET(F_KEY_RAW, PyUnicode_Substring(line, L.key.a, L.key.b));
        int batch = has_op && span_eq_ascii(kind, data, L.op, "BATCH.DELETE.OBJECT");
        int pct = span_has(kind, data, L.key, '%');
        if (!pct && !(batch && span_has(kind, data, L.key, '+')))
            v[F_KEY] = Py_NewRef(v[F_KEY_RAW]);
        else if (ascii)
            SET(F_KEY, unquote_span(kind, data, L.key, batch));
        else
            SET(F_KEY, PyObject_CallOneArg(batch ? S.unquote_plus : S.unquote, v[F_KEY_RAW]));
    } else {
        v[F_KEY_RAW] = Py_NewRef(Py_None);
        v[F_KEY] = Py_NewRef(Py_None);
    }
    if (is_dash(kind, data, L.uri))
        v[F_URI] = Py_NewRef(Py_None);
    else
        SET(F_URI, uri_value(-1, line, kind, data, L.uri, redact, ascii));
    if (is_dash(kind, data, L.ref))
        v[F_REF] = Py_NewRef(Py_None);
    else
        SET(F_REF, uri_value(IC_REF, line, kind, data, L.ref, redact, ascii));

    if (is_dash(kind, data, L.requester))
        requester = Py_NewRef(Py_None);
    else if ((requester = span_str(IC_REQUESTER, line, kind, data, L.requester)) == NULL)
        goto done;
    if ((ident = PyDict_GetItemWithError(S.ident_cache, requester)) != NULL)
        Py_INCREF(ident);
    else if (PyErr_Occurred() || (ident = PyObject_CallOneArg(S.decode_requester, requester)) == NULL)
        goto done;
    if (!PyTuple_CheckExact(ident) || PyTuple_GET_SIZE(ident) != 4)
        FALLBACK();
    for (int i = 0; i < 4; i++)
        v[F_ACCOUNT + i] = Py_NewRef(PyTuple_GET_ITEM(ident, i));
    v[F_REQUESTER] = Py_NewRef(requester);

    if (has_op) {
        v[F_OP] = Py_NewRef(op);
        SET(F_ACTION, action_of(op, has_key, v[F_URI]));
    } else {
        v[F_OP] = Py_NewRef(Py_None);
        v[F_ACTION] = Py_NewRef(Py_None);
    }
    v[F_SOURCE] = Py_NewRef(S.source);
    SET(F_OWNER, str_or_none(IC_OWNER, line, kind, data, L.owner));
    SET(F_BUCKET, str_or_none(IC_BUCKET, line, kind, data, L.bucket));
    SET(F_IP, str_or_none(IC_IP, line, kind, data, L.ip));
    SET(F_REQID, str_or_none(-1, line, kind, data, L.reqid));
    SET(F_ERR, str_or_none(IC_ERR, line, kind, data, L.err));
    SET(F_UA, str_or_none(IC_UA, line, kind, data, L.ua));
    SET(F_STATUS, num_or_none(nums[0], present[0]));
    SET(F_SENT, num_or_none(nums[1], present[1]));
    SET(F_SIZE, num_or_none(nums[2], present[2]));
    SET(F_TOTAL, num_or_none(nums[3], present[3]));
    SET(F_TURN, num_or_none(nums[4], present[4]));
    for (int i = 0; i < N_TAIL; i++) {
        if (tv[i].a < 0)
            v[F_TAIL0 + i] = Py_NewRef(Py_None);
        else   /* version id and host id are unique: not shared */
            SET(F_TAIL0 + i, str_or_none(i < 2 ? -1 : IC_TAIL, line, kind, data, tv[i]));
    }
    SET(F_EXTRA, PyList_New(ntail > N_TAIL ? ntail - N_TAIL : 0));
    for (Py_ssize_t i = N_TAIL; i < ntail; i++) {
        PyObject *s = span_str(IC_TAIL, line, kind, data, tail[i]);
        if (s == NULL)
            goto done;
        PyList_SET_ITEM(v[F_EXTRA], i - N_TAIL, s);
    }
    v[F_LOG_OBJECT] = Py_NewRef(log_object);
    v[F_LOG_LINE] = Py_NewRef(log_line);
    v[F_OFFSET] = Py_NewRef(offset_o);
    v[F_DETAIL] = Py_NewRef(Py_None);
    if (end == PyUnicode_GET_LENGTH(line))
        v[F_RAW] = Py_NewRef(line);
    else
        SET(F_RAW, PyUnicode_Substring(line, 0, end));
    result = make_event(v);

done:
    for (int i = 0; i < N_FIELDS; i++)
        Py_XDECREF(v[i]);
    Py_XDECREF(op);
    Py_XDECREF(requester);
    Py_XDECREF(ident);
    if (tail != tail_buf)
        PyMem_Free(tail);
    return result;
}

/* The C parse, else the pure-Python parser (which raises MalformedError for a bad line). */
static PyObject *
parse_any(PyObject *line, PyObject *log_object, PyObject *log_line, PyObject *offset, PyObject *redact)
{
    PyObject *r = parse_c(line, log_object, log_line, offset, redact);
    if (r != Py_None)
        return r;
    Py_DECREF(r);
    PyObject *args[5] = {line, log_object, log_line, offset, redact};
    return PyObject_Vectorcall(S.fallback, args, 5, NULL);
}

static const char *const ARG_NAMES[5] = {"line", "log_object", "log_line", "offset", "redact"};

/* parse(line, log_object="-", log_line=0, offset=-1, redact=True), keywords as parse_line_pure */
static int
parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **out, const char *fname)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (S.event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "s3tail.core._speedups.configure() was not called");
        return -1;
    }
    if (nargs > 5) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 5 positional arguments (%zd given)", fname, nargs);
        return -1;
    }
    out[0] = NULL;
    out[1] = S.dash;
    out[2] = S.zero;
    out[3] = S.minus_one;
    out[4] = Py_True;
    int given[5] = {0};
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
        given[i] = 1;
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int idx = -1;
        for (int j = 0; j < 5; j++)
            if (PyUnicode_CompareWithASCIIString(name, ARG_NAMES[j]) == 0)
                idx = j;
        if (idx < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, name);
            return -1;
        }
        if (given[idx]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, ARG_NAMES[idx]);
            return -1;
        }
        out[idx] = args[nargs + k];
        given[idx] = 1;
    }
    if (out[0] == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument 'line'", fname);
        return -1;
    }
    return 0;
}

static PyObject *
sp_parse(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[5];
    if (parse_args(args, nargs, kwnames, a, "parse_line") < 0)
        return NULL;
    return parse_any(a[0], a[1], a[2], a[3], a[4]);
}

static PyObject *
sp_try_parse(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[5];
    if (parse_args(args, nargs, kwnames, a, "try_parse") < 0)
        return NULL;
    return parse_c(a[0], a[1], a[2], a[3], a[4]);
}

/* The raised exception as one object (the error indicator cleared). */
static PyObject *
fetch_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/*
 * parse_block(data, log_object, first_line, first_offset, redact, on_error) -> list
 * The lines of data (split after each b"\n", a last line without one too), each decoded as
 * raw.decode("utf-8", "backslashreplace") and parsed like parse(); a line that raises an Exception
 * becomes on_error(log_object, line_number, text, exception), text without its trailing \r and \n. Line numbers count from first_line, byte
 * offsets from first_offset (each line's offset is where it starts).
 */
static PyObject *
sp_parse_block(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    PyObject *log_object, *redact, *on_error;
    long long first_line, first_offset;
    if (S.event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "s3tail.core._speedups.configure() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*ULLOO:parse_block", &buf, &log_object, &first_line, &first_offset,
                          &redact, &on_error))
        return NULL;
    PyObject *out = PyList_New(0);
    const char *p = (const char *)buf.buf, *stop = p + buf.len;
    long long lineno = first_line;
    while (out != NULL && p < stop) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *e = nl ? nl + 1 : stop, *te = e;
        /* The text without its line ending: parse_line and on_error only ever use text.rstrip()
           / text.rstrip("\r\n") / text.strip(), and an event's raw is then the text itself. */
        while (te > p && (te[-1] == '\n' || te[-1] == '\r'))
            te--;
        PyObject *text = PyUnicode_DecodeUTF8(p, te - p, "backslashreplace");
        PyObject *ln = PyLong_FromLongLong(lineno);
        PyObject *off = PyLong_FromLongLong(first_offset + (p - (const char *)buf.buf));
        PyObject *item = NULL;
        if (text && ln && off) {
            item = parse_any(text, log_object, ln, off, redact);
            if (item == NULL && PyErr_ExceptionMatches(PyExc_Exception)) {
                PyObject *exc = fetch_exception();
                if (exc == NULL)
                    exc = Py_NewRef(Py_None);
                PyObject *cargs[4] = {log_object, ln, text, exc};
                item = PyObject_Vectorcall(on_error, cargs, 4, NULL);
                Py_XDECREF(exc);
            }
        }
        if (item == NULL || PyList_Append(out, item) < 0)
            Py_CLEAR(out);
        Py_XDECREF(item);
        Py_XDECREF(text);
        Py_XDECREF(ln);
        Py_XDECREF(off);
        lineno++;
        p = e;
    }
    PyBuffer_Release(&buf);
    return out;
}

static void
clear_state(void)
{
    Py_CLEAR(S.event_type);
    Py_CLEAR(S.time_cache);
    Py_CLEAR(S.ok_ops);
    Py_CLEAR(S.ident_cache);
    Py_CLEAR(S.decode_requester);
    Py_CLEAR(S.action_for);
    Py_CLEAR(S.unquote);
    Py_CLEAR(S.unquote_plus);
    Py_CLEAR(S.redact_uri);
    Py_CLEAR(S.fallback);
    Py_CLEAR(S.uri_ops);
    Py_CLEAR(S.act[0]);
    Py_CLEAR(S.act[1]);
    Py_CLEAR(S.source);
    Py_CLEAR(S.dash);
    Py_CLEAR(S.zero);
    Py_CLEAR(S.minus_one);
    Py_CLEAR(S.last_iso);
    Py_CLEAR(S.last_epoch);
    icache_clear();
}

/* configure(event_type, n_fields, source, time_cache, ok_ops, ident_cache, decode_requester,
 *           action_for, uri_ops, unquote, unquote_plus, redact_uri, fallback) */
static PyObject *
sp_configure(PyObject *self, PyObject *args)
{
    PyTypeObject *et;
    Py_ssize_t n;
    PyObject *source, *tc, *ok, *ic, *dr, *af, *uo, *uq, *uqp, *ru, *fb;
    if (!PyArg_ParseTuple(args, "O!nUO!O!O!OOO!OOOO:configure", &PyType_Type, &et, &n, &source,
                          &PyDict_Type, &tc, &PySet_Type, &ok, &PyDict_Type, &ic, &dr, &af,
                          &PyFrozenSet_Type, &uo, &uq, &uqp, &ru, &fb))
        return NULL;
    if (!PyType_IsSubtype(et, &PyTuple_Type) || n != N_FIELDS) {
        PyErr_Format(PyExc_TypeError, "configure: need a tuple subclass with %d fields", N_FIELDS);
        return NULL;
    }
    if (!PyCallable_Check(dr) || !PyCallable_Check(af) || !PyCallable_Check(uq) || !PyCallable_Check(uqp)
            || !PyCallable_Check(ru) || !PyCallable_Check(fb)) {
        PyErr_SetString(PyExc_TypeError, "configure: helpers must be callable");
        return NULL;
    }
    PyObject *a0 = PyDict_New(), *a1 = PyDict_New(), *dash = PyUnicode_FromString("-");
    PyObject *zero = PyLong_FromLong(0), *m1 = PyLong_FromLong(-1);
    if (a0 == NULL || a1 == NULL || dash == NULL || zero == NULL || m1 == NULL) {
        Py_XDECREF(a0);
        Py_XDECREF(a1);
        Py_XDECREF(dash);
        Py_XDECREF(zero);
        Py_XDECREF(m1);
        return NULL;
    }
    clear_state();
    S.event_type = (PyTypeObject *)Py_NewRef(et);
    S.n_fields = n;
#if PY_VERSION_HEX < 0x030E0000
    /* Same as tuple_subtype_new: tp_alloc the subclass and fill ob_item (no dict, no weakrefs). */
    S.direct_alloc = et->tp_basicsize == PyTuple_Type.tp_basicsize && et->tp_itemsize == PyTuple_Type.tp_itemsize
        && et->tp_dictoffset == 0 && et->tp_weaklistoffset == 0;
#else
    S.direct_alloc = 0;
#endif
    S.source = Py_NewRef(source);
    S.time_cache = Py_NewRef(tc);
    S.ok_ops = Py_NewRef(ok);
    S.ident_cache = Py_NewRef(ic);
    S.decode_requester = Py_NewRef(dr);
    S.action_for = Py_NewRef(af);
    S.uri_ops = Py_NewRef(uo);
    S.unquote = Py_NewRef(uq);
    S.unquote_plus = Py_NewRef(uqp);
    S.redact_uri = Py_NewRef(ru);
    S.fallback = Py_NewRef(fb);
    S.act[0] = a0;
    S.act[1] = a1;
    S.dash = dash;
    S.zero = zero;
    S.minus_one = m1;
    return PyBool_FromLong(S.direct_alloc);
}

static PyMethodDef methods[] = {
    {"parse", (PyCFunction)(void (*)(void))sp_parse, METH_FASTCALL | METH_KEYWORDS,
     "parse(line, log_object='-', log_line=0, offset=-1, redact=True) -> Event; as parse_line_pure."},
    {"try_parse", (PyCFunction)(void (*)(void))sp_try_parse, METH_FASTCALL | METH_KEYWORDS,
     "try_parse(line, log_object='-', log_line=0, offset=-1, redact=True) -> Event, or None when the "
     "line is left to the pure-Python parser."},
    {"parse_block", sp_parse_block, METH_VARARGS,
     "parse_block(data, log_object, first_line, first_offset, redact, on_error) -> list of the items "
     "of every line of data (Event, or on_error(log_object, line_number, text, exception))."},
    {"configure", sp_configure, METH_VARARGS,
     "configure(Event, n_fields, source, time_cache, ok_ops, ident_cache, decode_requester, action_for, "
     "uri_ops, unquote, unquote_plus, redact_uri, fallback) -> bool (Event filled in place)."},
    {NULL, NULL, 0, NULL},
};

static void
sp_free(void *m)
{
    clear_state();
}

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "C fast path for s3tail.core.access_log.parse_line (optional; S3TAIL_PURE_PYTHON=1 disables it).",
    -1, methods, NULL, NULL, NULL, sp_free,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&moduledef);
}
