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
 * scan_block(data, state) is the columnar scan of s3tail.core.colblock: the same line layouts read from
 * the bytes, no Event built, per table a code for the raw field bytes its value depends on (see the
 * comment above sp_scan_block).
 *
 * S3TAIL_PURE_PYTHON=1 in the environment makes access_log.py skip this module entirely.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
typedef struct { long long ep, y; unsigned m, d; int hh, mi, ss; } Stamp;

/* The parts of a stamp parse_stamp handles (see there): 1, or 0 when it does not handle it. */
static int
stamp_parts(const Py_UCS4 *st, Stamp *out)
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
    out->ep = ep;
    out->y = y;
    out->m = m;
    out->d = d;
    out->hh = hh;
    out->mi = mi;
    out->ss = ss;
    return 1;
}

static int
parse_stamp(const Py_UCS4 *st, PyObject **iso, PyObject **epoch)
{
    Stamp sp;
    if (!stamp_parts(st, &sp))
        return 0;
    long long ep = sp.ep;
    int hh = sp.hh, mi = sp.mi, ss = sp.ss;
    /* "%04lld-%02u-%02uT%02d:%02d:%02dZ" (y is 1000..9999, the others two digits), without snprintf */
    char buf[20];
    int yy = (int)sp.y, two[5] = {(int)sp.m, (int)sp.d, hh, mi, ss};
    buf[0] = (char)('0' + yy / 1000);
    buf[1] = (char)('0' + yy / 100 % 10);
    buf[2] = (char)('0' + yy / 10 % 10);
    buf[3] = (char)('0' + yy % 10);
    for (int i = 0; i < 5; i++) {
        buf[5 + 3 * i] = (char)('0' + two[i] / 10);
        buf[6 + 3 * i] = (char)('0' + two[i] % 10);
    }
    buf[4] = buf[7] = '-';
    buf[10] = 'T';
    buf[13] = buf[16] = ':';
    buf[19] = 'Z';
    *iso = PyUnicode_FromStringAndSize(buf, 20);
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
    Py_UCS4 c = i < end ? ascii_lower(CH(i)) : 0;
    if (c != 'x' && c != 's')
        return -1;
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
 * Where re.sub(r"(?i)((?:^|[?&;])(?:x-amz-signature|x-amz-security-token|signature)=)[^&;\s\"#]*",
 * r"\1REDACTED", text) replaces values, on ASCII text: scan left to right, a match starts at the text's
 * start or at one of ?&; and its value runs to the next &;"# or white space; the scan resumes after the
 * value. The values' spans go to val[]; returns their number, or max + 1 when there are more than max.
 */
static int
redact_spans(int kind, const void *data, Span s, Span *val, int max)
{
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
        if (nv == max)
            return max + 1;
        val[nv].a = vs;
        val[nv++].b = ve;
        pos = ve;
    }
    return nv;
}

/* The redacted text of the span (see redact_spans) as a new reference; the span's own text (shared via
   ic) when nothing is secret; NULL on error. */
static PyObject *
redact_span(int ic, PyObject *line, int kind, const void *data, Span s)
{
    Span val[MAX_REDACT];
    int nv = redact_spans(kind, data, s, val, MAX_REDACT);
    if (nv > MAX_REDACT) {
        PyObject *v = PyUnicode_Substring(line, s.a, s.b);
        PyObject *r = v ? PyObject_CallOneArg(S.redact_uri, v) : NULL;
        Py_XDECREF(v);
        return r;
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

/* unquote_to_bytes(text) into buf (at least s.b - s.a bytes), '+' read as a space first when plus is
   set; returns the length written. */
static Py_ssize_t
unquote_into(int kind, const void *data, Span s, int plus, char *buf)
{
    Py_ssize_t j = 0;
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
    return j;
}

/* unquote_to_bytes(text).decode("utf-8", "replace"), '+' read as a space first when plus is set. */
static PyObject *
unquote_span(int kind, const void *data, Span s, int plus)
{
    char stack[512], *buf = stack;
    Py_ssize_t n = s.b - s.a;
    if (n > (Py_ssize_t)sizeof stack && (buf = PyMem_Malloc((size_t)n)) == NULL)
        return PyErr_NoMemory();
    PyObject *r = PyUnicode_DecodeUTF8(buf, unquote_into(kind, data, s, plus, buf), "replace");
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
    Py_ssize_t n = s.b - s.a;
    if (n == 1)
        return CH(s.a) == '-';
    /* "SigV2", "SigV4" or "SigV4a" */
    if (n < 5 || n > 6 || CH(s.a) != 'S' || CH(s.a + 1) != 'i' || CH(s.a + 2) != 'g' || CH(s.a + 3) != 'V')
        return 0;
    Py_UCS4 v = CH(s.a + 4);
    return n == 5 ? v == '2' || v == '4' : v == '4' && CH(s.a + 5) == 'a';
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

/*
 * The tail as _build reads it: a HostId holding a space (its two halves one space apart) is rejoined
 * in tail[] (returns the new count), and tv[0..N_TAIL) gets version_id..source_region, padding
 * marked a = b = -1 (read as "-": None).
 */
static Py_ssize_t
tail_values(int kind, const void *data, Span *tail, Py_ssize_t ntail, Span *tv)
{
    if (ntail > 3 && !is_sig(kind, data, tail[2]) && is_sig(kind, data, tail[3])) {
        tail[1].b = tail[2].b;
        for (Py_ssize_t i = 2; i + 1 < ntail; i++)
            tail[i] = tail[i + 1];
        ntail--;
    }
    for (Py_ssize_t i = 0; i < N_TAIL; i++)
        if (i < ntail)
            tv[i] = tail[i];
        else
            tv[i].a = tv[i].b = -1;
    return ntail;
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
    ntail = tail_values(kind, data, tail, ntail, tv);

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

/* ==== scan_block: the columnar scan of s3tail.core.colblock ====
 *
 * scan_block(data, state) reads a block of access-log lines (split as parse_block does) without building
 * Events. Per line it finds the fields with the same layout code as parse_c (on the bytes: a line
 * is taken here only when it is valid UTF-8, ends in an ASCII character after rstrip, and has one of
 * the two shapes parse_c reads; any other line is "slow": colblock.py parses it in Python). For every
 * table of s3tail.core.columns.TABLES but "object" it looks up the line's *raw composite*, the field
 * bytes that table's decoded value is a function of, in a hash table kept in `state` (raw bytes ->
 * raw code, append-only) and parses the number columns.
 *
 * Only what can make a line malformed is checked (number fields, and on first sight of a composite:
 * the operation's form, the status, the time stamp), so every line taken here is one the parser reads
 * as an Event. For the raw codes seen for the first time, the value is built here for the one-field
 * tables (key, time, bucket, ip: the same code as parse_c) and, for the others, the line where the code
 * first appears is returned, for Python to parse.
 */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif

enum { T_IDENTITY, T_REQUEST, T_CLIENT, T_XPORT, T_BUCKET, T_KEY, T_IP, T_TIME, N_TABLES };
static const char *const TABLE_NAMES[N_TABLES] = {
    "identity", "request", "client", "xport", "bucket", "key", "ip", "time"};
/* 1: scan_block builds the values of new codes itself; 0: it gives the first line of each */
static const int TABLE_DIRECT[N_TABLES] = {0, 0, 0, 0, 1, 1, 1, 1};
#define SCAN_CAPSULE "s3tail.core._speedups.scan_state"
#define SCAN_SLOW 1        /* flags: the line is left to Python */
#define SCAN_NO_URI 2      /* flags: the request URI is "-" (the event's request_uri is None) */
#define SCAN_LITS_UNSURE 4 /* flags: lits is every literal, the URI's redaction not being certain */

/* A hash table slot, 16 bytes (four to a cache line): code < 0 when empty; tag, the hash's low half
   (where the slot's index comes from: a table has at most 2**32 slots); at arena + off, the
   composite's length (uint32) then its bytes. */
typedef struct { uint32_t tag; int32_t code; uint64_t off; } Slot;

typedef struct {
    Slot *slots;
    size_t mask, count;
    unsigned char *arena;
    size_t used, cap;
} HTab;

/* The time table's codes by epoch second: a dense array over [base, base + len) (a day of logs:
   86,400 int32), growing by doubling up to TMAP_MAX seconds; a second outside it once it cannot grow
   goes to the table's HTab, keyed by its 8 bytes. Two raw stamps of one second share a code. */
typedef struct {
    long long base;
    int32_t *codes;
    size_t len;
} TMap;
#define TMAP_MAX ((size_t)1 << 22)   /* 48 days of seconds: 16 MiB at most */
#define TMAP_FIRST 86400
#define TS_CANONICAL 253402300800LL   /* epoch seconds below: years up to 9999 (columns.TS_CANONICAL) */

typedef struct {
    uint64_t seed;
    TMap tm;
    HTab t[N_TABLES];
    unsigned char *scratch[2];   /* composites of a line: the two alternate between lines read here */
    size_t scap[2];
    struct Matcher *m;           /* the literals of scan_state(seed, literals), or NULL */
    unsigned char *text;         /* a line's request URI redacted, or its key URL-decoded, for m */
    size_t tcap;
} ScanState;

static void
scan_state_free(PyObject *cap)
{
    ScanState *st = PyCapsule_GetPointer(cap, SCAN_CAPSULE);
    if (st == NULL)
        return;
    for (int i = 0; i < N_TABLES; i++) {
        PyMem_Free(st->t[i].slots);
        PyMem_Free(st->t[i].arena);
    }
    PyMem_Free(st->tm.codes);
    PyMem_Free(st->scratch[0]);
    PyMem_Free(st->scratch[1]);
    PyMem_Free(st->m);
    PyMem_Free(st->text);
    PyMem_Free(st);
}

static int
ht_alloc(HTab *t, size_t nslots)
{
    Slot *s = PyMem_New(Slot, nslots);
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < nslots; i++)
        s[i].code = -1;
    t->slots = s;
    t->mask = nslots - 1;
    return 0;
}

/* ---- literals in the request URI (the rules' "uri" prefilter text), ASCII case-insensitively ---- */

#define MAX_LITS 64

static inline int
ctz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while (!(x & 1)) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

static inline unsigned
lower_byte(unsigned c)
{
    return c + (((c - 'A') < 26u) << 5);
}

typedef struct Matcher {
    int n;
    uint64_t all;                      /* every literal's bit */
    uint64_t single[256];              /* [c]: the one-byte literals c is (either case) */
    /* [row[b0] + col[b1]]: 0 when no literal starts with b0 b1, PAIR_SINGLE when only one-byte
       literals do, else 1 + where the literals of two bytes or more starting so begin in order[].
       row and col map the bytes that start literals (either case) to classes, the others to 0: small
       tables, in the L1 cache beside the line */
    uint16_t row[256];
    uint8_t col[256];
    int ncol;
    uint8_t pair[(MAX_LITS + 1) * (MAX_LITS + 1)];
    int redacted_may_hit;              /* a literal may overlap "REDACTED" put in by the redaction */
    uint8_t order[MAX_LITS], group_end[MAX_LITS];
    Py_ssize_t len[MAX_LITS];
    unsigned char lit[MAX_LITS][64];   /* lower case; longer literals are cut (a superset) */
} Matcher;
#define PAIR_SINGLE 255

/* Whether the lower-case lit[0, n) can occur in a redacted text overlapping an inserted "REDACTED":
   placed over "=redacted" followed by the end or a byte that ends a value (&;"# or white space), with
   at least one of its bytes on "redacted", every byte there must match. */
static int
overlaps_redacted(const unsigned char *lit, Py_ssize_t n)
{
    static const char R[] = "=redacted";           /* R[0] is the '=' before the value */
    for (Py_ssize_t at = -n + 2; at <= 8; at++) {   /* lit[0] over R[at] (R[1 .. 8] is "redacted") */
        int ok = 1;
        for (Py_ssize_t j = 0; j < n && ok; j++) {
            Py_ssize_t r = at + j;
            if (r >= 0 && r <= 8)
                ok = lit[j] == (unsigned char)R[r];
            else if (r == 9)
                ok = strchr("&;\"# \t\n\v\f\r\x1c\x1d\x1e\x1f", lit[j]) != NULL && lit[j] != 0;
        }
        if (ok)
            return 1;
    }
    return 0;
}

/* The literals (str, ASCII, not empty, at most MAX_LITS) -> a new Matcher; NULL with an error set. */
static Matcher *
matcher_new(PyObject *literals)
{
    PyObject *seq = PySequence_Fast(literals, "scan_state: literals must be a sequence of str");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Matcher *m = NULL;
    if (n > MAX_LITS) {
        PyErr_Format(PyExc_ValueError, "scan_state: at most %d literals", MAX_LITS);
        goto fail;
    }
    if ((m = PyMem_Calloc(1, sizeof *m)) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    m->n = (int)n;
    int no = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyUnicode_Check(o) || !PyUnicode_IS_ASCII(o) || PyUnicode_GET_LENGTH(o) == 0) {
            PyErr_SetString(PyExc_ValueError, "scan_state: literals must be non-empty ASCII str");
            goto fail;
        }
        const unsigned char *t = PyUnicode_1BYTE_DATA(o);
        Py_ssize_t len = PyUnicode_GET_LENGTH(o);
        if (len > (Py_ssize_t)sizeof m->lit[0])
            len = (Py_ssize_t)sizeof m->lit[0];
        m->len[k] = len;
        for (Py_ssize_t j = 0; j < len; j++)
            m->lit[k][j] = (unsigned char)lower_byte(t[j]);
        m->all |= 1ull << k;
        if (len == 1) {
            for (unsigned c = 0; c < 256; c++)
                if (lower_byte(c) == m->lit[k][0])
                    m->single[c] |= 1ull << k;
            continue;
        }
        /* insert k into order[], sorted by the first two bytes */
        int at = no++;
        while (at > 0 && memcmp(m->lit[m->order[at - 1]], m->lit[k], 2) > 0) {
            m->order[at] = m->order[at - 1];
            at--;
        }
        m->order[at] = (uint8_t)k;
    }
    /* the byte classes: row (first bytes, times ncol), col (second bytes of the longer literals) */
    int nrow = 1;
    m->ncol = 1;
    for (int k = 0; k < m->n; k++)
        for (int j = 0; j < 2 && j < m->len[k]; j++) {
            unsigned c = m->lit[k][j], up = c >= 'a' && c <= 'z' ? c - 32u : c;
            if (j == 0 ? m->row[c] == 0 : m->col[c] == 0) {
                if (j == 0)
                    m->row[c] = m->row[up] = (uint16_t)nrow++;
                else
                    m->col[c] = m->col[up] = (uint8_t)m->ncol++;
            }
        }
    for (int c = 0; c < 256; c++)
        m->row[c] = (uint16_t)(m->row[c] * m->ncol);
    for (int g = 0, e; g < no; g = e) {
        const unsigned char *l = m->lit[m->order[g]];
        for (e = g + 1; e < no && memcmp(m->lit[m->order[e]], l, 2) == 0; e++)
            ;
        m->group_end[g] = (uint8_t)e;
        m->pair[m->row[l[0]] + m->col[l[1]]] = (uint8_t)(g + 1);
    }
    for (int k = 0; k < m->n; k++)
        if (m->len[k] == 1)
            for (int c = 0; c < m->ncol; c++)
                if (m->pair[m->row[m->lit[k][0]] + c] == 0)
                    m->pair[m->row[m->lit[k][0]] + c] = PAIR_SINGLE;
    for (int k = 0; k < m->n; k++)
        m->redacted_may_hit |= overlaps_redacted(m->lit[k], m->len[k]);
    Py_DECREF(seq);
    return m;
fail:
    PyMem_Free(m);
    Py_DECREF(seq);
    return NULL;
}

/* The literals that start at p[i] (p[0, n), n > i + 1), v = the pair table's entry there. */
static uint64_t
lits_at(const Matcher *m, const unsigned char *p, Py_ssize_t n, Py_ssize_t i, unsigned v)
{
    uint64_t hit = m->single[p[i]];
    if (v == PAIR_SINGLE)
        return hit;
    for (int g = (int)v - 1; g < m->group_end[v - 1]; g++) {
        int k = m->order[g];
        Py_ssize_t len = m->len[k], j = 2;
        if (len > n - i)
            continue;
        while (j < len && lower_byte(p[i + j]) == m->lit[k][j])
            j++;
        if (j == len)
            hit |= 1ull << k;
    }
    return hit;
}

/* The literals that occur in p[0, n): a bit per literal. The places where the pair table says one may
   start, 64 at a time, into a mask without branches (their outcome would be a coin toss), then those
   places checked. */
static uint64_t
lits_in(const Matcher *m, const unsigned char *p, Py_ssize_t n)
{
    const uint8_t *pair = m->pair, *col = m->col;
    const uint16_t *row = m->row;
    uint64_t hit = 0;
    if (n <= 0)
        return 0;
    for (Py_ssize_t i = 0; i + 1 < n; i += 64) {
        int lim = n - 1 - i < 64 ? (int)(n - 1 - i) : 64;      /* places i .. i + lim - 1 have a pair */
        const unsigned char *q = p + i;
        uint64_t cand = 0;
        for (int j = 0; j < lim; j++)
            cand |= (uint64_t)(pair[row[q[j]] + col[q[j + 1]]] != 0) << j;
        while (cand) {
            int j = ctz64(cand);
            cand &= cand - 1;
            hit |= lits_at(m, p, n, i + j, pair[row[q[j]] + col[q[j + 1]]]);
        }
    }
    return hit | m->single[p[n - 1]];
}

/* scan_state(seed, literals=()) -> the hash tables of one pipeline (a capsule; colblock keeps it on the
   Dicts), and the literals scan_block looks for in each line's request URI (see uri_lits). */
static PyObject *
sp_scan_state(PyObject *self, PyObject *args)
{
    PyObject *arg, *literals = NULL;
    if (!PyArg_ParseTuple(args, "O|O:scan_state", &arg, &literals))
        return NULL;
    unsigned long long seed = PyLong_AsUnsignedLongLongMask(arg);
    if (seed == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    ScanState *st = PyMem_Calloc(1, sizeof *st);
    if (st == NULL)
        return PyErr_NoMemory();
    st->seed = seed;
    Py_ssize_t nlits = literals == NULL ? 0 : PyObject_Length(literals);
    if (nlits < 0 || (nlits > 0 && (st->m = matcher_new(literals)) == NULL)) {
        PyMem_Free(st);
        return NULL;
    }
    for (int i = 0; i < N_TABLES; i++)
        if (ht_alloc(&st->t[i], 256) < 0) {
            for (int j = 0; j < i; j++)
                PyMem_Free(st->t[j].slots);
            PyMem_Free(st->m);
            PyMem_Free(st);
            return PyErr_NoMemory();
        }
    PyObject *cap = PyCapsule_New(st, SCAN_CAPSULE, scan_state_free);
    if (cap == NULL) {
        for (int i = 0; i < N_TABLES; i++)
            PyMem_Free(st->t[i].slots);
        PyMem_Free(st->m);
        PyMem_Free(st);
    }
    return cap;
}

static inline uint64_t
rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* A seeded 64-bit hash (8 bytes a step, then a final avalanche). */
static uint64_t
hash_bytes(uint64_t seed, const unsigned char *p, size_t n)
{
    uint64_t h = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull), w = 0;
    const unsigned char *end = p + n;
    if (n >= 8) {
        for (; p + 8 <= end; p += 8) {
            memcpy(&w, p, 8);
            h = rotl64((h ^ w) * 0x87C37B91114253D5ull, 29);
        }
        memcpy(&w, end - 8, 8);          /* the last 8 bytes (overlapping what was read) */
    }
    else {
        if (n >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, p, 4);
            memcpy(&hi, end - 4, 4);
            w = (uint64_t)lo | (uint64_t)hi << 32;
        }
        else if (n > 0)
            w = (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)end[-1] << 16;
    }
    h = (h ^ w) * 0x4CF5AD432745937Full;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

/* a[0, n) == b[0, n): the first eight bytes inline (where equal composites usually differ, if at all) */
static inline int
same_bytes(const unsigned char *a, const unsigned char *b, size_t n)
{
    if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        return x == y && memcmp(a + 8, b + 8, n - 8) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static inline uint32_t
arena_len(const unsigned char *a)
{
    uint32_t n;
    memcpy(&n, a, 4);
    return n;
}

static Slot *
ht_probe(HTab *t, uint64_t h, const unsigned char *p, size_t n)
{
    size_t i = (size_t)h & t->mask;
    uint32_t tag = (uint32_t)h;
    for (;;) {
        Slot *s = &t->slots[i];
        if (s->code < 0)
            return s;
        if (s->tag == tag) {
            const unsigned char *a = t->arena + s->off;
            if (arena_len(a) == n && same_bytes(a + 4, p, n))
                return s;
        }
        i = (i + 1) & t->mask;
    }
}

/* Add the composite (not present, n < 2**32) with the next code; returns it, or -1 (no memory). */
static int32_t
ht_insert(HTab *t, uint64_t h, const unsigned char *p, size_t n)
{
    if (t->count >= INT32_MAX - 1) {
        PyErr_SetString(PyExc_OverflowError, "scan_block: too many distinct values in one table");
        return -1;
    }
    if ((t->count + 1) * 2 > t->mask + 1) {   /* keep the load under 1/2 */
        HTab bigger = *t;
        if (ht_alloc(&bigger, (t->mask + 1) * 2) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].code >= 0) {
                size_t j = (size_t)t->slots[i].tag & bigger.mask;
                while (bigger.slots[j].code >= 0)
                    j = (j + 1) & bigger.mask;
                bigger.slots[j] = t->slots[i];
            }
        PyMem_Free(t->slots);
        *t = bigger;
    }
    if (t->used + 4 + n > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->used + 4 + n)
            cap *= 2;
        unsigned char *a = PyMem_Realloc(t->arena, cap);
        if (a == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->arena = a;
        t->cap = cap;
    }
    Slot *s = ht_probe(t, h, p, n);
    uint32_t len = (uint32_t)n;
    memcpy(t->arena + t->used, &len, 4);
    memcpy(t->arena + t->used + 4, p, n);
    s->tag = (uint32_t)h;
    s->off = t->used;
    s->code = (int32_t)t->count++;
    t->used += 4 + n;
    return s->code;
}

/* The time code of epoch second ep, or -1. */
static int32_t
tmap_find(ScanState *st, long long ep)
{
    TMap *m = &st->tm;
    if (m->codes != NULL && ep >= m->base && (unsigned long long)(ep - m->base) < m->len)
        return m->codes[ep - m->base];
    HTab *t = &st->t[T_TIME];
    if (t->count == 0)
        return -1;
    return ht_probe(t, hash_bytes(st->seed, (const unsigned char *)&ep, 8), (const unsigned char *)&ep, 8)->code;
}

/* Add epoch second ep (not present) with the table's next code; returns it, or -1 (no memory). */
static int32_t
tmap_insert(ScanState *st, long long ep)
{
    TMap *m = &st->tm;
    HTab *t = &st->t[T_TIME];
    int in = m->codes != NULL && ep >= m->base && (unsigned long long)(ep - m->base) < m->len;
    if (!in) {
        long long lo, hi;   /* the new range [lo, hi), doubling on the side ep is */
        if (m->codes == NULL) {
            lo = ep - 3600;
            hi = lo + TMAP_FIRST;
        }
        else if (ep < m->base) {
            hi = m->base + (long long)m->len;
            lo = hi - 2 * (long long)m->len;
            if (ep - 3600 < lo)
                lo = ep - 3600;
        }
        else {
            lo = m->base;
            hi = lo + 2 * (long long)m->len;
            if (ep + 3600 >= hi)
                hi = ep + 3600;
        }
        if (hi - lo <= (long long)TMAP_MAX && (m->codes == NULL || t->count < INT32_MAX - 1)) {
            int32_t *c = PyMem_Malloc((size_t)(hi - lo) * sizeof(int32_t));
            if (c == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            for (long long i = 0; i < hi - lo; i++)
                c[i] = -1;
            if (m->codes != NULL)
                memcpy(c + (m->base - lo), m->codes, m->len * sizeof(int32_t));
            PyMem_Free(m->codes);
            m->codes = c;
            m->base = lo;
            m->len = (size_t)(hi - lo);
            in = 1;
        }
    }
    if (!in)
        return ht_insert(t, hash_bytes(st->seed, (const unsigned char *)&ep, 8), (const unsigned char *)&ep, 8);
    if (t->count >= INT32_MAX - 1) {
        PyErr_SetString(PyExc_OverflowError, "scan_block: too many distinct values in one table");
        return -1;
    }
    return m->codes[ep - m->base] = (int32_t)t->count++;
}

/* Strict UTF-8 validity, as CPython's decoder judges it (no surrogates, no overlong forms). */
static int
utf8_valid(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            uint64_t w;
            i++;
            while (i + 8 <= n && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ull)))
                i += 8;
            continue;
        }
        int k;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            k = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        }
        else
            return 0;
        if (i + k >= n)
            return 0;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (int j = 2; j <= k; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xBF)
                return 0;
        i += k + 1;
    }
    return 1;
}

/* The white space str.rstrip() removes, among ASCII characters. */
static inline int
ascii_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* access_log._OP_RE: ^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)+$ */
static int
op_ok(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t seg = 0;
    int dots = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '.') {
            if (seg == 0)
                return 0;
            dots++;
            seg = 0;
        }
        else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
            seg++;
        else
            return 0;
    }
    return dots > 0 && seg > 0;
}

/* Whether "signature=" or "security-token=" (ASCII letters in any case) occurs in s: what makes
   redact_uri look further (a superset of what it redacts). */
static int
span_has_secret(const unsigned char *d, Span s)
{
    static const char *names[2] = {"signature", "security-token"};
    for (Py_ssize_t i = s.a; i < s.b; i++) {
        const unsigned char *eq = memchr(d + i, '=', (size_t)(s.b - i));
        if (eq == NULL)
            return 0;
        i = eq - d;
        for (int k = 0; k < 2; k++) {
            Py_ssize_t n = (Py_ssize_t)strlen(names[k]), j = 0;
            if (i - s.a < n)
                continue;
            while (j < n && ascii_lower(d[i - n + j]) == names[k][j])
                j++;
            if (j == n)
                return 1;
        }
    }
    return 0;
}

/* Whether p[0, n) holds only ASCII bytes (eight at a time). */
static int
bytes_ascii(const unsigned char *p, Py_ssize_t n)
{
    uint64_t acc = 0;
    Py_ssize_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull)
            return 0;
    }
    for (; i < n; i++)
        acc |= p[i];
    return acc < 0x80;
}

static int
span_is_ascii(const unsigned char *d, Span s)
{
    return bytes_ascii(d + s.a, s.b - s.a);
}

/* Whether the n-byte lit occurs in p[0, len) (memchr for its first byte, then memcmp). */
static int
memfind(const unsigned char *p, Py_ssize_t len, const char *lit, Py_ssize_t n)
{
    const unsigned char *stop = p + len - n + 1, *r = p;
    while (r < stop && (r = memchr(r, lit[0], (size_t)(stop - r))) != NULL) {
        if (memcmp(r, lit, (size_t)n) == 0)
            return 1;
        r++;
    }
    return 0;
}

/* Append a length-prefixed part to w (padding spans, a < 0, are written as "-": both mean None). */
static unsigned char *
put_part(unsigned char *w, const unsigned char *d, Span s)
{
    uint32_t n = s.a < 0 ? 1 : (uint32_t)(s.b - s.a);
    memcpy(w, &n, 4);
    w += 4;
    if (s.a < 0)
        *w++ = '-';
    else {
        memcpy(w, d + s.a, n);
        w += n;
    }
    return w;
}

static PyObject *
span_text_or_none(const unsigned char *d, Span s)
{
    if (s.b - s.a == 1 && d[s.a] == '-')
        return Py_NewRef(Py_None);
    return PyUnicode_DecodeUTF8((const char *)d + s.a, s.b - s.a, "strict");
}

/* The event's key for the raw key span, as parse_c computes it. */
static PyObject *
key_value(const unsigned char *d, Span k, int batch)
{
    const int kind = PyUnicode_1BYTE_KIND;
    const void *data = d;
    if (is_dash(kind, data, k))
        return Py_NewRef(Py_None);
    int pct = span_has(kind, data, k, '%');
    if (!pct && !(batch && span_has(kind, data, k, '+')))
        return PyUnicode_DecodeUTF8((const char *)d + k.a, k.b - k.a, "strict");
    if (span_is_ascii(d, k))
        return unquote_span(kind, data, k, batch);
    PyObject *raw = PyUnicode_DecodeUTF8((const char *)d + k.a, k.b - k.a, "strict");
    if (raw == NULL)
        return NULL;
    PyObject *r = PyObject_CallOneArg(batch ? S.unquote_plus : S.unquote, raw);
    Py_DECREF(raw);
    return r;
}

/*
 * The literals (a bit each) that may occur in the text the rules' "uri" prefilter reads on this line
 * (rules.engine.field_values): the event's request URI, redacted (redact_uri), else its key URL-decoded
 * (unquote, unquote_plus for BATCH.DELETE.OBJECT); ASCII case-insensitively, as bytes.lower() then find.
 * Where the redaction is not certain (a non-ASCII URI with a '=', the regex's Unicode case and white
 * space), every bit, and 1 is returned (else 0; 1 there without literals too). Decoding with errors="replace" changes only non-ASCII
 * bytes, which no literal holds. -1 on no memory.
 */
static int
uri_lits(ScanState *st, const unsigned char *d, const Layout *L, int no_uri, int plus, uint64_t *out)
{
    const int kind = PyUnicode_1BYTE_KIND;
    const void *data = d;
    const Matcher *m = st->m;
    Span s = no_uri ? L->key : L->uri;
    Py_ssize_t n = s.b - s.a;
    Span val[MAX_REDACT];
    int nv = 0;
    *out = 0;
    if (no_uri ? is_dash(kind, data, s) : !memchr(d + s.a, '=', (size_t)n)) {
        if (m != NULL && !no_uri)
            *out = lits_in(m, d + s.a, n);
        return 0;
    }
    if (!no_uri && !span_is_ascii(d, s)) {
        if (m != NULL)
            *out = m->all;
        return 1;
    }
    if (m == NULL)
        return 0;
    if (no_uri ? !plus && !memchr(d + s.a, '%', (size_t)n) : !span_has_secret(d, s)) {
        *out = lits_in(m, d + s.a, n);
        return 0;
    }
    /* redacted: where no literal can overlap an inserted "REDACTED", a literal of the redacted text is
       one of the URI's own (in a part kept): none there, none at all (presigned URIs are long) */
    if (!no_uri && !m->redacted_may_hit && (*out = lits_in(m, d + s.a, n)) == 0)
        return 0;
    if (!no_uri && (nv = redact_spans(kind, data, s, val, MAX_REDACT)) == 0) {
        *out = lits_in(m, d + s.a, n);
        return 0;
    }
    /* a value takes "signature=" at least: 8 bytes more ("REDACTED") per 10 */
    size_t need = 2 * (size_t)n + 16;
    if (need > st->tcap) {
        unsigned char *t = PyMem_Realloc(st->text, need);
        if (t == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        st->text = t;
        st->tcap = need;
    }
    unsigned char *w = st->text;
    if (no_uri)
        w += unquote_into(kind, data, s, plus, (char *)w);
    else {
        Py_ssize_t from = s.a;
        for (;;) {
            for (int i = 0; i < nv && i < MAX_REDACT; i++) {
                memcpy(w, d + from, (size_t)(val[i].a - from));
                w += val[i].a - from;
                memcpy(w, "REDACTED", 8);
                w += 8;
                from = val[i].b;
            }
            if (nv <= MAX_REDACT)
                break;
            /* more: go on after the last value (a terminator, or the end: never a secret's start) */
            nv = redact_spans(kind, data, (Span){from, s.b}, val, MAX_REDACT);
        }
        memcpy(w, d + from, (size_t)(s.b - from));
        w += s.b - from;
    }
    *out = lits_in(m, st->text, w - st->text);
    return 0;
}

typedef struct {
    ScanState *st;
    Py_ssize_t n;                  /* lines in the block */
    int32_t *codes;                /* [N_TABLES][n] */
    uint64_t *lits;                /* [n]: uri_lits of each line read here */
    int64_t *nums;                 /* [3][n]: bytes_sent, object_size, total_time */
    int32_t *first[N_TABLES];      /* tables not direct: line of each new code */
    size_t nfirst[N_TABLES], cfirst[N_TABLES];
    PyObject *vals[N_TABLES];      /* direct tables: value of each new code */
    /* the previous line read here: its composites (into data or the other scratch) and codes */
    const unsigned char *prev[N_TABLES];
    size_t prev_n[N_TABLES];
    int32_t prev_code[N_TABLES];
    int half;                      /* the scratch the next line writes (the other one holds prev) */
} ScanOut;

/*
 * The single pass of scan_line over a line's text d[0, end): where its quotes are (up to 7), the
 * spaces outside quotes after r quotes (region r: 0 the head, 2 between URI and referrer, 4 the tail of
 * the bare-URI shape or between referrer and user agent, 6 the tail), and whether a byte is >= 0x80.
 * Sixteen bytes a step (SSE2 where the compiler has it).
 */
#define TOK_CAP 24          /* spaces kept per region (counted past it) */
typedef struct {
    int nq;
    Py_ssize_t q[7];
    int ns[4];                       /* spaces of regions 0, 2, 4, 6 */
    Py_ssize_t sp[4][TOK_CAP];       /* the first TOK_CAP of them */
    unsigned high;
} Toks;

static inline uint64_t
prefix_xor64(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/* The 64 bytes at p: bit j of *sp set when p[j] is a space, of *qt when a quote; *hi when a byte is
   >= 0x80. */
static inline void
masks64(const unsigned char *p, uint64_t *sp, uint64_t *qt, int *hi)
{
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(' '), quote = _mm_set1_epi8('"');
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    *sp = (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x0, space))
        | (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x1, space)) << 16
        | (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x2, space)) << 32
        | (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x3, space)) << 48;
    *qt = (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x0, quote))
        | (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x1, quote)) << 16
        | (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x2, quote)) << 32
        | (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x3, quote)) << 48;
    *hi = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(x0, x1), _mm_or_si128(x2, x3))) != 0;
#else
    uint64_t s = 0, q = 0;
    unsigned h = 0;
    for (int j = 0; j < 64; j++) {
        s |= (uint64_t)(p[j] == ' ') << j;
        q |= (uint64_t)(p[j] == '"') << j;
        h |= p[j];
    }
    *sp = s;
    *qt = q;
    *hi = h >= 0x80;
#endif
}

/* 0 when the line has more than 6 quotes (the scan does not take it), else 1. */
static int
tokenize(const unsigned char *d, Py_ssize_t end, Toks *t)
{
    uint64_t odd = 0;                /* inside quotes at the start of the step: all ones */
    t->nq = 0;
    t->high = 0;
    t->ns[0] = t->ns[1] = t->ns[2] = t->ns[3] = 0;
    for (Py_ssize_t i = 0; i < end; i += 64) {
        uint64_t msp, mq;
        int hi;
        if (end - i >= 64)
            masks64(d + i, &msp, &mq, &hi);
        else {
            unsigned char last[64] = {0};
            memcpy(last, d + i, (size_t)(end - i));
            masks64(last, &msp, &mq, &hi);
        }
        t->high |= (unsigned)hi;
        uint64_t inside = prefix_xor64(mq) ^ odd;
        odd = (uint64_t)0 - (inside >> 63);
        uint64_t m = (msp & ~inside) | mq;
        while (m) {
            int b = ctz64(m);
            m &= m - 1;
            if (mq >> b & 1) {
                if (t->nq == 7)
                    return 0;
                t->q[t->nq++] = i + b;
            }
            else {
                int r = t->nq >> 1, k = t->ns[r]++;
                if (k < TOK_CAP)
                    t->sp[r][k] = i + b;
            }
        }
    }
    return t->nq < 7;
}

/* The tail [from, end) split at its spaces sp[0, ns) (all of them when ns <= stored) as
   split_sp(..., N_TAIL + 8) splits it, cut to N_TAIL + 8 parts. */
static Py_ssize_t
tok_tail(const unsigned char *d, Py_ssize_t from, Py_ssize_t end, const Py_ssize_t *sp, int ns, int stored,
         Span *tail)
{
    Py_ssize_t n = 0;
    if (ns > stored && stored < N_TAIL + 8) {
        n = split_sp(PyUnicode_1BYTE_KIND, d, from, end, tail, N_TAIL + 8);
        return n > N_TAIL + 8 ? N_TAIL + 8 : n;
    }
    for (int k = 0; k < ns && n < N_TAIL + 8; k++) {
        tail[n].a = from;
        tail[n++].b = sp[k];
        from = sp[k] + 1;
    }
    if (n < N_TAIL + 8) {
        tail[n].a = from;
        tail[n++].b = end;
    }
    return n;
}

/* out[k] = the k-th of n parts from ``from`` on, each ending at sep[k] (the next starts after it). */
static void
tok_parts(Py_ssize_t from, const Py_ssize_t *sep, int n, Span *out)
{
    for (int k = 0; k < n; k++) {
        out[k].a = from;
        out[k].b = sep[k];
        from = sep[k] + 1;
    }
}

/* The sixteen fields owner .. turn, in the log's order. */
static void
tok_fields(Layout *L, const Span *f)
{
    L->owner = f[0]; L->bucket = f[1]; L->t_day = f[2]; L->t_zone = f[3]; L->ip = f[4];
    L->requester = f[5]; L->reqid = f[6]; L->op = f[7]; L->key = f[8]; L->uri = f[9];
    L->status = f[10]; L->err = f[11]; L->sent = f[12]; L->size = f[13]; L->total = f[14]; L->turn = f[15];
}

/* layout_usual and layout_bare_uri, then the tail's split, on the tokens of a line of bytes (for the
   bare-URI shape, the caller has checked that the text before the first quote is ASCII). 0: not one of
   the shapes. */
static int
tok_layout(const unsigned char *d, Py_ssize_t end, const Toks *t, Layout *L, Span *tail, Py_ssize_t *ntail)
{
    const Py_ssize_t *q = t->q;
    if (t->nq == 6) {
        const Py_ssize_t *h = t->sp[0], *m = t->sp[1], *tl = t->sp[3];
        if (q[4] != q[3] + 2 || d[q[3] + 1] != ' ')
            return 0;
        /* head: ten parts, the last empty; [2] starts "[", [3] ends "]" */
        if (t->ns[0] != 9 || h[8] != q[0] - 1 || h[2] == h[1] + 1 || d[h[1] + 1] != '['
                || h[3] == h[2] + 1 || d[h[3] - 1] != ']')
            return 0;
        /* middle: eight parts, the first and last empty */
        if (t->ns[1] != 7 || m[0] != q[1] + 1 || m[6] != q[2] - 1)
            return 0;
        if (q[5] + 1 >= end || d[q[5] + 1] != ' ')
            return 0;   /* an empty tail is the 17-field MalformedError: Python's job */
        Span f[16];
        tok_parts(0, h, 9, f);
        f[9] = (Span){q[0] + 1, q[1]};
        tok_parts(m[0] + 1, m + 1, 6, f + 10);
        tok_fields(L, f);
        L->ref = (Span){q[2] + 1, q[3]};
        L->ua = (Span){q[4] + 1, q[5]};
        L->tail_from = q[5] + 2;
        /* region 6 starts with the space at q[5] + 1 */
        *ntail = tok_tail(d, L->tail_from, end, tl + 1, t->ns[3] - 1, TOK_CAP - 1, tail);
        return 1;
    }
    if (t->nq != 4)
        return 0;
    const Py_ssize_t *h = t->sp[0], *tl = t->sp[2];
    if (q[2] != q[1] + 2 || d[q[1] + 1] != ' ')
        return 0;
    for (Py_ssize_t i = 0; i < q[0]; i++)
        if (d[i] != ' ' && ascii_space(d[i]))
            return 0;
    /* seventeen parts, the last empty, the others not; [2] starts "[", [3] ends "]" */
    if (t->ns[0] != 16 || h[15] != q[0] - 1 || h[0] == 0)
        return 0;
    for (int k = 1; k < 16; k++)
        if (h[k] == h[k - 1] + 1)
            return 0;
    if (d[h[1] + 1] != '[' || d[h[3] - 1] != ']')
        return 0;
    Span f[16];
    tok_parts(0, h, 16, f);
    tok_fields(L, f);
    L->ref = (Span){q[0] + 1, q[1]};
    L->ua = (Span){q[2] + 1, q[3]};
    Py_ssize_t i = q[3] + 1;
    while (i < end && d[i] == ' ')
        i++;
    if (i >= end)
        return 0;   /* no tail: Python's MalformedError */
    L->tail_from = i;
    int lead = (int)(i - (q[3] + 1));       /* the tail's leading spaces, the first of region 4 */
    if (lead >= TOK_CAP)
        *ntail = tok_tail(d, i, end, NULL, 1, 0, tail);
    else
        *ntail = tok_tail(d, i, end, tl + lead, t->ns[2] - lead, TOK_CAP - lead, tail);
    return 1;
}

/*
 * One line d[0, len) (its \r and \n already cut, as parse_block does), line index li. Returns 1 when
 * read here (codes and numbers written), 0 when left to Python, -1 on a Python error.
 */
static int
scan_line(ScanOut *o, const unsigned char *d, Py_ssize_t len, Py_ssize_t li, uint8_t *flags)
{
    const int kind = PyUnicode_1BYTE_KIND;
    const void *data = d;
    ScanState *st = o->st;
    Layout L;
    Py_ssize_t end = len;
    while (end > 0 && ascii_space(d[end - 1]))
        end--;
    if (end == 0 || d[end - 1] >= 0x80 || len > INT32_MAX - 64)
        return 0;     /* empty, may end in non-ASCII white space, or too long for a composite's uint32 length */
    Toks tk;
    if (!tokenize(d, end, &tk))
        return 0;
    int ascii = !tk.high;
    if (!ascii && !utf8_valid(d, len))
        return 0;                               /* backslashreplace decoding: Python's job */
    if (tk.nq == 4 && !ascii && !bytes_ascii(d, tk.q[0]))
        return 0;                               /* _HEAD_RE's \S reads Unicode white space */

    /* the fields (layout_usual, layout_bare_uri), and the tail as parse_c: a HostId holding a space is
       rejoined; version_id..source_region */
    Span tail[N_TAIL + 8], tv[N_TAIL];
    Py_ssize_t ntail;
    if (!tok_layout(d, end, &tk, &L, tail, &ntail))
        return 0;
    tail_values(kind, data, tail, ntail, tv);

    /* numbers: "-" or 1..18 ASCII digits, else Python (which may raise) */
    long long nv[4] = {-1, -1, -1, -1};
    Span ns[4] = {L.sent, L.size, L.total, L.turn};
    for (int i = 0; i < 4; i++)
        if (!is_dash(kind, data, ns[i]) && !span_uint(kind, data, ns[i], &nv[i]))
            return 0;

    int has_op = !is_dash(kind, data, L.op), has_key = !is_dash(kind, data, L.key);
    int no_uri = is_dash(kind, data, L.uri);
    int list2 = 0;
    if (!no_uri && memfind(d + L.uri.a, L.uri.b - L.uri.a, "list-type=2", 11)) {
        /* action_for reads the redacted URI: leave the rare URI that is also redacted to Python */
        if (span_has_secret(d, L.uri))
            return 0;
        list2 = 1;
    }
    int batch = L.op.b - L.op.a == 19 && memcmp(d + L.op.a, "BATCH.DELETE.OBJECT", 19) == 0;
    int plus = batch && has_key && span_has(kind, data, L.key, '+');

    /* ---- the raw composites ---- */
    size_t need = (size_t)len + 64;
    int half = o->half;
    if (need > st->scap[half]) {
        unsigned char *s = PyMem_Realloc(st->scratch[half], need);
        if (s == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        st->scratch[half] = s;
        st->scap[half] = need;
    }
    const unsigned char *cp[N_TABLES];
    size_t cn[N_TABLES];
    unsigned char *w = st->scratch[half], *w0;
    cp[T_IDENTITY] = d + L.requester.a;
    cn[T_IDENTITY] = (size_t)(L.requester.b - L.requester.a);
    cp[T_BUCKET] = d + L.bucket.a;
    cn[T_BUCKET] = (size_t)(L.bucket.b - L.bucket.a);
    cp[T_IP] = d + L.ip.a;
    cn[T_IP] = (size_t)(L.ip.b - L.ip.a);
    cp[T_TIME] = d + L.t_day.a + 1;             /* "dd/Mon/yyyy:hh:mm:ss +hhmm" */
    cn[T_TIME] = (size_t)(L.t_zone.b - 1 - (L.t_day.a + 1));
    w0 = w;
    w = put_part(w, d, L.op);
    *w++ = (unsigned char)(has_key | list2 << 1);
    w = put_part(w, d, L.status);
    w = put_part(w, d, L.err);
    cp[T_REQUEST] = w0;
    cn[T_REQUEST] = (size_t)(w - w0);
    w0 = w;
    w = put_part(w, d, L.ua);
    w = put_part(w, d, tv[2]);              /* signature_version */
    w = put_part(w, d, tv[6]);              /* tls_version */
    cp[T_CLIENT] = w0;
    cn[T_CLIENT] = (size_t)(w - w0);
    w0 = w;
    w = put_part(w, d, tv[3]);              /* cipher_suite */
    w = put_part(w, d, tv[5]);              /* host_header */
    cp[T_XPORT] = w0;
    cn[T_XPORT] = (size_t)(w - w0);
    w0 = w;
    memcpy(w, d + L.key.a, (size_t)(L.key.b - L.key.a));
    w += L.key.b - L.key.a;
    *w++ = (unsigned char)plus;                 /* unquote_plus and unquote differ only on '+' */
    cp[T_KEY] = w0;
    cn[T_KEY] = (size_t)(w - w0);

    /* ---- look up; validate what is new; then add ---- */
    uint64_t h[N_TABLES];
    int32_t code[N_TABLES];
    PyObject *iso = NULL, *epoch = NULL;
    for (int t = 0; t < N_TABLES; t++) {
        if (o->prev_code[t] >= 0 && cn[t] == o->prev_n[t] && same_bytes(cp[t], o->prev[t], cn[t])) {
            code[t] = o->prev_code[t];          /* as on the line before: no lookup */
            continue;
        }
        if (t == T_TIME) {                      /* by its epoch second (TMap), below */
            code[t] = -3;
            continue;
        }
        code[t] = -2;
        h[t] = hash_bytes(st->seed, cp[t], cn[t]);
        PREFETCH(&st->t[t].slots[h[t] & st->t[t].mask]);
    }
    for (int t = 0; t < N_TABLES; t++)
        if (code[t] == -2)
            code[t] = ht_probe(&st->t[t], h[t], cp[t], cn[t])->code;
    Py_UCS4 stamp[25];
    long long tep = 0;
    if (code[T_TIME] == -3) {
        Stamp sp;
        if (L.t_day.b - L.t_day.a != 21 || L.t_zone.b - L.t_zone.a != 6)
            return 0;
        for (int i = 0; i < 20; i++)
            stamp[i] = d[L.t_day.a + 1 + i];
        for (int i = 0; i < 5; i++)
            stamp[20 + i] = d[L.t_zone.a + i];
        if (!stamp_parts(stamp, &sp))
            return 0;                           /* a form the parser handles: left to Python */
        tep = sp.ep;
        code[T_TIME] = tmap_find(st, tep);
    }
    if (code[T_REQUEST] < 0) {
        long long status;
        if (has_op && !op_ok(d + L.op.a, L.op.b - L.op.a))
            return 0;
        if (!is_dash(kind, data, L.status)
                && (L.status.b - L.status.a != 3 || !span_uint(kind, data, L.status, &status)))
            return 0;
    }
    if (code[T_TIME] < 0) {                     /* a new second: its value (stamp was read above) */
        int r = parse_stamp(stamp, &iso, &epoch);
        if (r <= 0)
            return r;
    }
    int ret = -1;
    for (int t = 0; t < N_TABLES; t++) {
        if (code[t] >= 0)
            continue;
        PyObject *val = NULL;
        if (TABLE_DIRECT[t]) {
            if (t == T_TIME)                    /* the epoch alone when canonical (columns.TimeTable) */
                val = tep >= 0 && tep < TS_CANONICAL ? Py_NewRef(epoch) : PyTuple_Pack(2, epoch, iso);
            else if (t == T_KEY)
                val = key_value(d, L.key, plus);
            else
                val = span_text_or_none(d, t == T_BUCKET ? L.bucket : L.ip);
            if (val == NULL)
                goto done;
        }
        else if (o->nfirst[t] == o->cfirst[t]) {
            size_t c = o->cfirst[t] ? o->cfirst[t] * 2 : 64;
            int32_t *f = PyMem_Realloc(o->first[t], c * sizeof(int32_t));
            if (f == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            o->first[t] = f;
            o->cfirst[t] = c;
        }
        if ((code[t] = t == T_TIME ? tmap_insert(st, tep) : ht_insert(&st->t[t], h[t], cp[t], cn[t])) < 0) {
            Py_XDECREF(val);
            goto done;
        }
        if (val != NULL) {
            int e = PyList_Append(o->vals[t], val);
            Py_DECREF(val);
            if (e < 0)
                goto done;
        }
        else
            o->first[t][o->nfirst[t]++] = (int32_t)li;
    }
    for (int t = 0; t < N_TABLES; t++) {
        o->codes[(Py_ssize_t)t * o->n + li] = code[t] + 1;
        o->prev[t] = cp[t];
        o->prev_n[t] = cn[t];
        o->prev_code[t] = code[t];
    }
    o->half ^= 1;
    for (int i = 0; i < 3; i++)
        o->nums[(Py_ssize_t)i * o->n + li] = nv[i];
    if (no_uri)
        *flags |= SCAN_NO_URI;
    int unsure = uri_lits(st, d, &L, no_uri, plus, &o->lits[li]);
    if (unsure < 0)
        goto done;
    if (unsure)
        *flags |= SCAN_LITS_UNSURE;
    ret = 1;
done:
    Py_XDECREF(iso);
    Py_XDECREF(epoch);
    return ret;
}

/*
 * scan_block(data, state) -> (n, codes, nums, starts, ends, flags, lits, bases, new)
 *   n       lines in data (split after each b"\n", a last line without one too)
 *   codes   bytes, int32 [len(TABLES)][n]: raw code + 1 per line, 0 on lines left to Python
 *   nums    bytes, int64 [3][n]: bytes_sent, object_size, total_time (-1 for "-")
 *   starts  bytes, int64 [n + 1]: where each line starts in data (then len(data))
 *   ends    bytes, int64 [n]: where each line's text ends after rstrip (lines read here)
 *   flags   bytes, uint8 [n]: SCAN_SLOW (1) left to Python, SCAN_NO_URI (2) request URI "-",
 *           SCAN_LITS_UNSURE (4) lits not certain (every bit set)
 *   lits    bytes, uint64 [n]: per line read here, bit k set when literal k of scan_state(seed, literals)
 *           may occur in the request URI, else the key (see uri_lits); 0 on lines left to Python
 *   bases   tuple: per table, how many raw codes it had before this block
 *   new     tuple: per table, the new codes' values (a list, direct tables) or the line of their
 *           first appearance (bytes, int32)
 * Tables in the order of scan_tables().
 */
static PyObject *
sp_scan_block(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    PyObject *cap, *result = NULL;
    PyObject *b_codes = NULL, *b_nums = NULL, *b_starts = NULL, *b_ends = NULL, *b_flags = NULL, *b_lits = NULL;
    PyObject *bases = NULL, *news = NULL;
    ScanOut o;
    memset(&o, 0, sizeof o);
    for (int t = 0; t < N_TABLES; t++)
        o.prev_code[t] = -1;
    if (S.event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "s3tail.core._speedups.configure() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*O:scan_block", &buf, &cap))
        return NULL;
    if ((o.st = PyCapsule_GetPointer(cap, SCAN_CAPSULE)) == NULL)
        goto done;
    const unsigned char *base = buf.buf, *p = base, *stop = base + buf.len;
    Py_ssize_t n = 0;
    for (const unsigned char *r = p; r < stop && (r = memchr(r, '\n', (size_t)(stop - r))) != NULL; r++)
        n++;
    if (buf.len > 0 && stop[-1] != '\n')
        n++;
    o.n = n;
    if ((bases = PyTuple_New(N_TABLES)) == NULL || (news = PyTuple_New(N_TABLES)) == NULL)
        goto done;
    for (int t = 0; t < N_TABLES; t++) {
        PyObject *c = PyLong_FromSize_t(o.st->t[t].count);
        if (c == NULL)
            goto done;
        PyTuple_SET_ITEM(bases, t, c);
        if (TABLE_DIRECT[t] && (o.vals[t] = PyList_New(0)) == NULL)
            goto done;
    }
    b_codes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * N_TABLES * n);
    b_nums = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int64_t) * 3 * n);
    b_starts = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int64_t) * (n + 1));
    b_ends = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int64_t) * n);
    b_flags = PyBytes_FromStringAndSize(NULL, n);
    b_lits = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(uint64_t) * n);
    if (!b_codes || !b_nums || !b_starts || !b_ends || !b_flags || !b_lits)
        goto done;
    o.lits = (uint64_t *)PyBytes_AS_STRING(b_lits);
    o.codes = (int32_t *)PyBytes_AS_STRING(b_codes);
    o.nums = (int64_t *)PyBytes_AS_STRING(b_nums);
    int64_t *starts = (int64_t *)PyBytes_AS_STRING(b_starts), *ends = (int64_t *)PyBytes_AS_STRING(b_ends);
    uint8_t *flags = (uint8_t *)PyBytes_AS_STRING(b_flags);
    for (Py_ssize_t li = 0; li < n; li++) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(stop - p));
        const unsigned char *e = nl ? nl + 1 : stop, *te = e;
        while (te > p && (te[-1] == '\n' || te[-1] == '\r'))
            te--;
        starts[li] = p - base;
        flags[li] = 0;
        int r = scan_line(&o, p, te - p, li, &flags[li]);
        if (r < 0)
            goto done;
        if (r == 0) {
            flags[li] = SCAN_SLOW;
            o.lits[li] = 0;
            ends[li] = te - base;
            for (int t = 0; t < N_TABLES; t++)
                o.codes[(Py_ssize_t)t * n + li] = 0;
            for (int i = 0; i < 3; i++)
                o.nums[(Py_ssize_t)i * n + li] = 0;
        }
        else {
            Py_ssize_t end = te - p;
            while (end > 0 && ascii_space(p[end - 1]))
                end--;
            ends[li] = (p - base) + end;
        }
        p = e;
    }
    starts[n] = buf.len;
    for (int t = 0; t < N_TABLES; t++) {
        PyObject *x = TABLE_DIRECT[t] ? Py_NewRef(o.vals[t])
            : PyBytes_FromStringAndSize((const char *)o.first[t], (Py_ssize_t)(o.nfirst[t] * sizeof(int32_t)));
        if (x == NULL)
            goto done;
        PyTuple_SET_ITEM(news, t, x);
    }
    result = Py_BuildValue("(nOOOOOOOO)", n, b_codes, b_nums, b_starts, b_ends, b_flags, b_lits, bases, news);
done:
    for (int t = 0; t < N_TABLES; t++) {
        PyMem_Free(o.first[t]);
        Py_XDECREF(o.vals[t]);
    }
    Py_XDECREF(b_codes);
    Py_XDECREF(b_nums);
    Py_XDECREF(b_starts);
    Py_XDECREF(b_ends);
    Py_XDECREF(b_flags);
    Py_XDECREF(b_lits);
    Py_XDECREF(bases);
    Py_XDECREF(news);
    PyBuffer_Release(&buf);
    return result;
}

/* scan_tables() -> ((name, direct), ...): the tables scan_block fills, in its order. */
static PyObject *
sp_scan_tables(PyObject *self, PyObject *unused)
{
    PyObject *out = PyTuple_New(N_TABLES);
    if (out == NULL)
        return NULL;
    for (int t = 0; t < N_TABLES; t++) {
        PyObject *item = Py_BuildValue("(sO)", TABLE_NAMES[t], TABLE_DIRECT[t] ? Py_True : Py_False);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, t, item);
    }
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

/*
 * An index buffer (a numpy array of int32 or int64, any strides) read as int64 values: idx_get.
 */
typedef struct {
    Py_buffer view;
    Py_ssize_t n;
    int wide;
} IndexBuf;

static int
index_open(PyObject *obj, IndexBuf *b)
{
    if (PyObject_GetBuffer(obj, &b->view, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = b->view.format ? b->view.format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    int ok = b->view.ndim == 1 && f[0] != 0 && f[1] == 0
             && ((b->view.itemsize == 8 && (f[0] == 'l' || f[0] == 'q' || f[0] == 'n'))
                 || (b->view.itemsize == 4 && (f[0] == 'i' || f[0] == 'l')));
    if (!ok) {
        PyBuffer_Release(&b->view);
        PyErr_SetString(PyExc_TypeError, "an index must be a 1-d buffer of int32 or int64");
        return -1;
    }
    b->n = b->view.shape[0];
    b->wide = b->view.itemsize == 8;
    return 0;
}

static inline long long
index_get(IndexBuf *b, Py_ssize_t k)
{
    const char *p = (const char *)b->view.buf + k * b->view.strides[0];
    if (b->wide) {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/*
 * take(values, idx, default=None, addend=None) -> list: values[idx[k]] for every k (values: a list;
 * idx: a 1-d int32 or int64 buffer such as a numpy array; an index out of range, negative ones
 * included, raises IndexError), a None value replaced by default, then addend added (value + addend)
 * when addend is not None. The items are the list's own objects (not copies) unless addend is given.
 * The column path of the rule engine gathers Python values by dictionary code with it.
 */
static PyObject *
sp_take(PyObject *self, PyObject *args)
{
    PyObject *values, *idx, *dflt = Py_None, *addend = Py_None;
    if (!PyArg_ParseTuple(args, "O!O|OO", &PyList_Type, &values, &idx, &dflt, &addend))
        return NULL;
    IndexBuf b;
    if (index_open(idx, &b) < 0)
        return NULL;
    PyObject *out = PyList_New(b.n);
    if (out == NULL) {
        PyBuffer_Release(&b.view);
        return NULL;
    }
    for (Py_ssize_t k = 0; k < b.n; k++) {
        long long i = index_get(&b, k);
        if (i < 0 || i >= PyList_GET_SIZE(values)) {
            PyErr_Format(PyExc_IndexError, "take: index %lld out of range", i);
            goto fail;
        }
        PyObject *v = PyList_GET_ITEM(values, i);
        if (v == Py_None)
            v = dflt;
        if (addend != Py_None) {
            v = PyNumber_Add(v, addend);
            if (v == NULL)
                goto fail;
        } else {
            Py_INCREF(v);
        }
        PyList_SET_ITEM(out, k, v);
    }
    PyBuffer_Release(&b.view);
    return out;
fail:
    PyBuffer_Release(&b.view);
    Py_DECREF(out);
    return NULL;
}

/* The byte offset of the plain object slot ``name`` of ``cls`` (a member descriptor), -1 with an
 * exception set when it is not one. */
static Py_ssize_t
slot_offset(PyTypeObject *cls, PyObject *name, const char *who)
{
    PyObject *d = PyObject_GetAttr((PyObject *)cls, name);
    if (d == NULL)
        return -1;
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX
             && PyType_IsSubtype(cls, PyDescr_TYPE(d));
    Py_ssize_t off = ok ? ((PyMemberDescrObject *)d)->d_member->offset : -1;
    Py_DECREF(d);
    if (!ok)
        PyErr_Format(PyExc_TypeError, "%s: %R is not a slot of %R", who, name, cls);
    return off;
}

/*
 * mark(objs, cls, name, old, new, out, eq_name=None, eq_values=None) -> int: for every object of the
 * list objs (each an instance of cls) whose slot ``name`` is ``old`` (identity), set the slot to
 * ``new`` and append the object to the list out (None: no list); returns how many were set. With
 * eq_name, only the objects whose slot eq_name equals (==) eq_values[k] (a list as long as objs). The
 * rule engine closes findings with it (``if not f.closed: f.closed = True; closed.append(f)``; the
 * due ones of a schedule: those whose close_ts is still the scheduled one).
 */
static PyObject *
sp_mark(PyObject *self, PyObject *args)
{
    PyObject *objs, *name, *old, *new, *out, *eq_name = Py_None, *eq_values = Py_None;
    PyTypeObject *cls;
    if (!PyArg_ParseTuple(args, "O!O!OOOO|OO", &PyList_Type, &objs, &PyType_Type, &cls, &name, &old, &new, &out,
                          &eq_name, &eq_values))
        return NULL;
    if (out != Py_None && !PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "mark: out must be a list or None");
        return NULL;
    }
    Py_ssize_t off = slot_offset(cls, name, "mark");
    if (off < 0)
        return NULL;
    Py_ssize_t eq_off = -1;
    if (eq_name != Py_None) {
        if (!PyList_Check(eq_values) || PyList_GET_SIZE(eq_values) != PyList_GET_SIZE(objs)) {
            PyErr_SetString(PyExc_ValueError, "mark: eq_values must be a list as long as objs");
            return NULL;
        }
        eq_off = slot_offset(cls, eq_name, "mark");
        if (eq_off < 0)
            return NULL;
    }
    Py_ssize_t set = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(objs); k++) {
        PyObject *o = PyList_GET_ITEM(objs, k);
        if (!PyObject_TypeCheck(o, cls)) {
            PyErr_Format(PyExc_TypeError, "mark: %R is not an instance of %R", Py_TYPE(o), cls);
            return NULL;
        }
        PyObject **slot = (PyObject **)((char *)o + off);
        if (*slot != old)
            continue;
        if (eq_off >= 0) {
            PyObject *have = *(PyObject **)((char *)o + eq_off);
            if (have == NULL)
                continue;
            int same = PyObject_RichCompareBool(have, PyList_GET_ITEM(eq_values, k), Py_EQ);
            if (same < 0)
                return NULL;
            if (!same)
                continue;
        }
        Py_INCREF(new);
        Py_SETREF(*slot, new);
        set++;
        if (out != Py_None && PyList_Append(out, o) < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(set);
}

/* A writable C-contiguous 1-d int64 buffer (a numpy int64 array). */
static int
int64_open(PyObject *obj, Py_buffer *view, const char *who)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    if (view->ndim != 1 || view->itemsize != 8 || f[1] != 0 || (f[0] != 'l' && f[0] != 'q')) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s: a writable contiguous 1-d int64 buffer is needed", who);
        return -1;
    }
    return 0;
}

/*
 * hash_ids(keys, vals, codes, out, next_id) -> next_id: dense ids of int64 codes in an open-addressing
 * hash table (keys: the codes, -1 for a free slot; vals: their ids; both int64 arrays of one power-of-two
 * size, slot of a code = the top bits of code * 0x9E3779B97F4A7C15, linear probing). out[k] is the id of
 * codes[k]; a code not in the table is inserted with id next_id, next_id + 1, ... in order. The caller
 * keeps the table at most a quarter full (room for every code of the call); next_id is also how many
 * codes the table holds (ids are 0, 1, ... in order of insertion). -1 is not a valid code.
 */
static PyObject *
sp_hash_ids(PyObject *self, PyObject *args)
{
    PyObject *keys_o, *vals_o, *codes_o, *out_o;
    long long next_id;
    if (!PyArg_ParseTuple(args, "OOOOL", &keys_o, &vals_o, &codes_o, &out_o, &next_id))
        return NULL;
    Py_buffer kv, vv, ov;
    IndexBuf cb;
    if (int64_open(keys_o, &kv, "hash_ids") < 0)
        return NULL;
    if (int64_open(vals_o, &vv, "hash_ids") < 0) {
        PyBuffer_Release(&kv);
        return NULL;
    }
    if (int64_open(out_o, &ov, "hash_ids") < 0) {
        PyBuffer_Release(&kv);
        PyBuffer_Release(&vv);
        return NULL;
    }
    if (index_open(codes_o, &cb) < 0) {
        PyBuffer_Release(&kv);
        PyBuffer_Release(&vv);
        PyBuffer_Release(&ov);
        return NULL;
    }
    Py_ssize_t size = kv.shape[0], n = cb.n;
    int bits = 0;
    while (((Py_ssize_t)1 << bits) < size)
        bits++;
    PyObject *res = NULL;
    if (size < 2 || ((Py_ssize_t)1 << bits) != size || vv.shape[0] != size || ov.shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "hash_ids: keys and vals of one power-of-two size, out as long as codes");
        goto done;
    }
    int64_t *keys = kv.buf, *vals = vv.buf, *out = ov.buf;
    long long used = next_id;
    uint64_t mask = (uint64_t)size - 1;
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t code = (int64_t)index_get(&cb, k);
        if (code == -1) {
            PyErr_SetString(PyExc_ValueError, "hash_ids: -1 is not a valid code");
            goto done;
        }
        uint64_t j = ((uint64_t)code * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
        while (keys[j] != -1 && keys[j] != code)
            j = (j + 1) & mask;
        if (keys[j] == -1) {
            if (used + 1 >= size) {
                PyErr_SetString(PyExc_ValueError, "hash_ids: the table is full");
                goto done;
            }
            keys[j] = code;
            vals[j] = next_id++;
            used++;
        }
        out[k] = vals[j];
    }
    res = PyLong_FromLongLong(next_id);
done:
    PyBuffer_Release(&kv);
    PyBuffer_Release(&vv);
    PyBuffer_Release(&ov);
    PyBuffer_Release(&cb.view);
    return res;
}

/*
 * new_objects(cls, n, names, columns, consts): n new instances of cls (made as object.__new__(cls),
 * no __init__) whose __slots__ attributes are filled directly: names[i] from columns[i][k] (a list of
 * length n) for object k, then the remaining names from consts (one value for every object). A column
 * may also be a tuple (values, idx) or (values, idx, default): values[idx[k]] for object k (values: a
 * list; idx: a 1-d int32 or int64 buffer of n indexes; a None value replaced by default when given), as
 * take() would gather it, without the list. Every name must be a plain object slot (a member descriptor)
 * of cls. The rule engine's column path makes its findings in bulk with it
 * (s3tail.core.rules.model.new_findings). untrack (default false): the objects are left out of the
 * cyclic garbage collector (PyObject_GC_UnTrack, as CPython does for tuples of atoms), for objects no
 * reference cycle can ever pass through: a collection then does not walk them (a hundred thousand
 * findings cost a young collection tens of milliseconds).
 */
static PyObject *
sp_new_objects(PyObject *self, PyObject *args)
{
    PyTypeObject *cls;
    Py_ssize_t n;
    PyObject *names, *columns, *consts;
    int untrack = 0;
    if (!PyArg_ParseTuple(args, "O!nO!O!O!|p", &PyType_Type, &cls, &n, &PyTuple_Type, &names,
                          &PyTuple_Type, &columns, &PyTuple_Type, &consts, &untrack))
        return NULL;
    Py_ssize_t nn = PyTuple_GET_SIZE(names), nc = PyTuple_GET_SIZE(columns);
    if (n < 0 || nc + PyTuple_GET_SIZE(consts) != nn || nn > 64) {
        PyErr_SetString(PyExc_ValueError, "new_objects: names must match columns + consts (at most 64)");
        return NULL;
    }
    if (cls->tp_alloc == NULL || cls->tp_itemsize != 0) {
        PyErr_SetString(PyExc_TypeError, "new_objects: not a plain class with __slots__");
        return NULL;
    }
    Py_ssize_t offsets[64];
    for (Py_ssize_t i = 0; i < nn; i++) {
        offsets[i] = slot_offset(cls, PyTuple_GET_ITEM(names, i), "new_objects");
        if (offsets[i] < 0)
            return NULL;
    }
    /* per column: a list of n values (vals[i] NULL), or values gathered by an index buffer */
    PyObject *vals[64], *dflt[64];
    IndexBuf bufs[64];
    int opened[64] = {0};
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; i < nc; i++) {
        PyObject *c = PyTuple_GET_ITEM(columns, i);
        vals[i] = dflt[i] = NULL;
        if (PyList_CheckExact(c) && PyList_GET_SIZE(c) == n)
            continue;
        Py_ssize_t len = PyTuple_Check(c) ? PyTuple_GET_SIZE(c) : 0;
        if ((len != 2 && len != 3) || !PyList_Check(PyTuple_GET_ITEM(c, 0))) {
            PyErr_SetString(PyExc_ValueError, "new_objects: each column must be a list of n values or "
                                              "(values, idx[, default])");
            goto done;
        }
        if (index_open(PyTuple_GET_ITEM(c, 1), &bufs[i]) < 0)
            goto done;
        opened[i] = 1;
        if (bufs[i].n != n) {
            PyErr_SetString(PyExc_ValueError, "new_objects: an index column must hold n indexes");
            goto done;
        }
        vals[i] = PyTuple_GET_ITEM(c, 0);
        dflt[i] = len == 3 ? PyTuple_GET_ITEM(c, 2) : Py_None;
    }
    out = PyList_New(n);
    if (out == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = cls->tp_alloc(cls, 0);
        if (o == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, k, o);
        for (Py_ssize_t i = 0; i < nn; i++) {
            PyObject *v;
            if (i >= nc) {
                v = PyTuple_GET_ITEM(consts, i - nc);
            } else if (vals[i] == NULL) {
                v = PyList_GET_ITEM(PyTuple_GET_ITEM(columns, i), k);
            } else {
                long long j = index_get(&bufs[i], k);
                if (j < 0 || j >= PyList_GET_SIZE(vals[i])) {
                    PyErr_Format(PyExc_IndexError, "new_objects: index %lld out of range", j);
                    Py_CLEAR(out);
                    goto done;
                }
                v = PyList_GET_ITEM(vals[i], j);
                if (v == Py_None)
                    v = dflt[i];
            }
            PyObject **slot = (PyObject **)((char *)o + offsets[i]);
            Py_INCREF(v);
            Py_XSETREF(*slot, v);
        }
        if (untrack && PyObject_IS_GC(o))
            PyObject_GC_UnTrack(o);
    }
done:
    for (Py_ssize_t i = 0; i < nc; i++)
        if (opened[i])
            PyBuffer_Release(&bufs[i].view);
    return out;
}

/* findings (task S) */

/* The slot at byte offset off of o (NULL: not set, with AttributeError set when want). */
static PyObject *
slot_get(PyObject *o, Py_ssize_t off, const char *name, int want)
{
    PyObject *v = *(PyObject **)((char *)o + off);
    if (v == NULL && want)
        PyErr_Format(PyExc_AttributeError, "join_lazy: slot %s of %R is not set", name, Py_TYPE(o));
    return v;
}

/* Set the slot at byte offset off of o to v (a new reference, stolen). */
static void
slot_put(PyObject *o, Py_ssize_t off, PyObject *v)
{
    Py_XSETREF(*(PyObject **)((char *)o + off), v);
}

/* The byte offset of the plain object slot called name of cls, -1 with an exception set. */
static Py_ssize_t
slot_offset_s(PyTypeObject *cls, const char *name, const char *who)
{
    PyObject *s = PyUnicode_FromString(name);
    if (s == NULL)
        return -1;
    Py_ssize_t off = slot_offset(cls, s, who);
    Py_DECREF(s);
    return off;
}

/*
 * join_lazy(fs, counts, lasts, src, segs, finding_cls, lazy_cls, parts_cls, max_refs, touched) -> list:
 * the segments of one batch that join open findings (the column path's take_segments), in order: finding
 * fs[k] (an instance of finding_cls) counts counts[k] more rows (count += counts[k]; last_ts = lasts[k]
 * when greater) and is set in the dict touched (value None). A lazy_cls finding not read yet (slot _src
 * not None) keeps the segment as a part of its evidence: on its first join its _src becomes a parts_cls
 * object whose slot parts is the list [_src, _at, None]; then (src, segs[k], counts[k]) are appended to
 * that list while the finding had counted fewer than max_refs rows (while it is lazy, its count is the
 * rows of its parts: the refs cap). The parts objects and their lists are left out of the cyclic garbage
 * collector: they hold only evidence sources (numpy arrays and lists of values), ints and None. Returns
 * the positions k whose finding was read already (its refs and samples are the caller's to extend).
 */
static PyObject *
sp_join_lazy(PyObject *self, PyObject *args)
{
    PyObject *fs, *counts, *lasts, *src, *segs, *touched;
    PyTypeObject *fcls, *lazy, *pcls;
    long long max_refs;
    if (!PyArg_ParseTuple(args, "O!O!O!OO!O!O!O!LO!", &PyList_Type, &fs, &PyList_Type, &counts, &PyList_Type,
                          &lasts, &src, &PyList_Type, &segs, &PyType_Type, &fcls, &PyType_Type, &lazy,
                          &PyType_Type, &pcls, &max_refs, &PyDict_Type, &touched))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(fs);
    if (PyList_GET_SIZE(counts) != n || PyList_GET_SIZE(lasts) != n || PyList_GET_SIZE(segs) != n) {
        PyErr_SetString(PyExc_ValueError, "join_lazy: fs, counts, lasts and segs must be of one length");
        return NULL;
    }
    if (pcls->tp_alloc == NULL || pcls->tp_itemsize != 0 || !PyType_IsSubtype(lazy, fcls)) {
        PyErr_SetString(PyExc_TypeError, "join_lazy: parts_cls a plain class with __slots__, lazy_cls a finding_cls");
        return NULL;
    }
    Py_ssize_t o_count = slot_offset_s(fcls, "count", "join_lazy"), o_last = slot_offset_s(fcls, "last_ts", "join_lazy"),
               o_src = slot_offset_s(lazy, "_src", "join_lazy"), o_at = slot_offset_s(lazy, "_at", "join_lazy"),
               o_parts = slot_offset_s(pcls, "parts", "join_lazy");
    if (o_count < 0 || o_last < 0 || o_src < 0 || o_at < 0 || o_parts < 0)
        return NULL;
    PyObject *read = PyList_New(0);
    if (read == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *f = PyList_GET_ITEM(fs, k), *c = PyList_GET_ITEM(counts, k), *last = PyList_GET_ITEM(lasts, k);
        if (!PyObject_TypeCheck(f, fcls)) {
            PyErr_Format(PyExc_TypeError, "join_lazy: %R is not a %R", Py_TYPE(f), fcls);
            goto fail;
        }
        PyObject *old = slot_get(f, o_count, "count", 1), *cur = slot_get(f, o_last, "last_ts", 1);
        if (old == NULL || cur == NULL)
            goto fail;
        int overflow;
        long long before = PyLong_Check(old) ? PyLong_AsLongLongAndOverflow(old, &overflow) : -1;
        if (!PyLong_Check(old) || (before == -1 && PyErr_Occurred())) {
            PyErr_SetString(PyExc_TypeError, "join_lazy: a finding's count must be an int");
            goto fail;
        }
        if (overflow > 0)
            before = max_refs;
        PyObject *sum = PyNumber_Add(old, c);
        if (sum == NULL)
            goto fail;
        slot_put(f, o_count, sum);
        int later = PyObject_RichCompareBool(last, cur, Py_GT);
        if (later < 0)
            goto fail;
        if (later) {
            Py_INCREF(last);
            slot_put(f, o_last, last);
        }
        PyObject *lsrc = Py_IS_TYPE(f, lazy) ? slot_get(f, o_src, "_src", 0) : NULL;
        if (lsrc == NULL || lsrc == Py_None) {
            PyObject *pos = PyLong_FromSsize_t(k);
            if (pos == NULL || PyList_Append(read, pos) < 0) {
                Py_XDECREF(pos);
                goto fail;
            }
            Py_DECREF(pos);
        } else {
            if (!Py_IS_TYPE(lsrc, pcls)) {   /* the first join: [source, at, None] */
                PyObject *at = slot_get(f, o_at, "_at", 1);
                if (at == NULL)
                    goto fail;
                PyObject *list = PyList_New(3);
                if (list == NULL)
                    goto fail;
                Py_INCREF(lsrc);
                Py_INCREF(at);
                Py_INCREF(Py_None);
                PyList_SET_ITEM(list, 0, lsrc);
                PyList_SET_ITEM(list, 1, at);
                PyList_SET_ITEM(list, 2, Py_None);
                PyObject *p = pcls->tp_alloc(pcls, 0);
                if (p == NULL) {
                    Py_DECREF(list);
                    goto fail;
                }
                PyObject_GC_UnTrack(list);
                if (PyObject_IS_GC(p))
                    PyObject_GC_UnTrack(p);
                slot_put(p, o_parts, list);
                slot_put(f, o_src, p);     /* (the old source lives on in the list) */
                lsrc = p;
            }
            if (before < max_refs) {
                PyObject *parts = slot_get(lsrc, o_parts, "parts", 1);
                if (parts == NULL)
                    goto fail;
                if (!PyList_Check(parts)) {
                    PyErr_SetString(PyExc_TypeError, "join_lazy: parts must be a list");
                    goto fail;
                }
                if (PyList_Append(parts, src) < 0 || PyList_Append(parts, PyList_GET_ITEM(segs, k)) < 0
                        || PyList_Append(parts, c) < 0)
                    goto fail;
            }
        }
        if (PyDict_SetItem(touched, f, Py_None) < 0)
            goto fail;
    }
    return read;
fail:
    Py_DECREF(read);
    return NULL;
}

/* windows (task W) */

/* A C-contiguous 1-d buffer whose items are itemsize bytes of one of the struct formats in formats
   (writable when asked). */
static int
array_open(PyObject *obj, Py_buffer *view, const char *formats, Py_ssize_t itemsize, int writable, const char *who)
{
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    if (view->ndim != 1 || view->itemsize != itemsize || f[0] == 0 || f[1] != 0 || strchr(formats, f[0]) == NULL) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s: a contiguous 1-d buffer of %zd-byte items (%s) is needed", who, itemsize,
                     formats);
        return -1;
    }
    return 0;
}

/* Release the buffers of arrays_open (of the first n arguments). */
static void
arrays_release(PyObject *const *o, Py_buffer *v, int n, int optional)
{
    for (int j = 0; j < n; j++)
        if (!(j == optional && o[j] == Py_None))
            PyBuffer_Release(&v[j]);
}

/* The buffers of n arguments (array_open with fmt[j], size[j], writable[j]); o[optional] may be None, left
   unopened (optional -1: none). On failure those opened are released and -1 returned. */
static int
arrays_open(PyObject *const *o, Py_buffer *v, int n, const char *const *fmt, const Py_ssize_t *size,
            const int *writable, int optional, const char *who)
{
    for (int j = 0; j < n; j++) {
        if (j == optional && o[j] == Py_None)
            continue;
        if (array_open(o[j], &v[j], fmt[j], size[j], writable[j], who) < 0) {
            arrays_release(o, v, j, optional);
            return -1;
        }
    }
    return 0;
}

/* The value of code in an open-addressing table (keys -1: free; size 1 << bits), -1 when absent. */
static inline int64_t
find_code(const int64_t *keys, const int64_t *vals, int bits, int64_t code)
{
    uint64_t mask = ((uint64_t)1 << bits) - 1;
    uint64_t j = ((uint64_t)code * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
    while (keys[j] != -1) {
        if (keys[j] == code)
            return vals[j];
        j = (j + 1) & mask;
    }
    return -1;
}

/*
 * count_codes(actor, bid, codes, out, chunk): the requests of a few group codes per piece of a batch's
 * rows (s3tail.core.rules.vector.ColumnCounts.per_piece), in one pass over the rows. actor, bid: per row,
 * the interned actor id and the bucket id (>= 0); codes: the group codes asked, ascending (an actor id, or
 * (bucket id + 1) << 32 | actor id; -1 or a code no row has counts 0); out: len(codes) * npc, zeroed by
 * the caller: out[i * npc + row / chunk] (npc 1: out[i]) counts the rows whose actor id or pair code is
 * codes[i]. All int64 arrays; only rows whose actor is one of the codes' actors are looked up.
 */
static PyObject *
sp_count_codes(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    Py_ssize_t chunk;
    if (!PyArg_ParseTuple(args, "OOOOn", &objs[0], &objs[1], &objs[2], &objs[3], &chunk))
        return NULL;
    static const char *const fmt[4] = {"lq", "lq", "lq", "lq"};
    static const Py_ssize_t itemsize[4] = {8, 8, 8, 8};
    static const int writable[4] = {0, 0, 0, 1};
    Py_buffer views[4];
    if (arrays_open(objs, views, 4, fmt, itemsize, writable, -1, "count_codes") < 0)
        return NULL;
    Py_buffer av = views[0], bv = views[1], cv = views[2], ov = views[3];
    PyObject *res = NULL;
    unsigned char *mark = NULL;
    Py_ssize_t n = av.shape[0], k = cv.shape[0], npc = k ? ov.shape[0] / k : 0;
    const int64_t *actor = av.buf, *bid = bv.buf, *codes = cv.buf;
    int64_t *out = ov.buf;
    if (bv.shape[0] != n || chunk < 1 || (k && (ov.shape[0] % k || npc < 1 || (npc > 1 && (n - 1) / chunk >= npc)))) {
        PyErr_SetString(PyExc_ValueError, "count_codes: bid as long as actor, out len(codes) * pieces of chunk rows");
        goto done;
    }
    int64_t top = -1, btop = -1;     /* the largest actor id, bucket id of the codes */
    for (Py_ssize_t i = 0; i < k; i++) {
        int64_t c = codes[i];
        if (i && c < codes[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "count_codes: codes must be ascending");
            goto done;
        }
        if (c < 0)
            continue;
        int64_t a = c > 0xFFFFFFFFLL ? (c & 0xFFFFFFFFLL) : c;
        if (a > top)
            top = a;
        if (c > 0xFFFFFFFFLL && (c >> 32) - 1 > btop)
            btop = (c >> 32) - 1;
    }
    if (top < 0) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    int bits = 2;
    while (((Py_ssize_t)1 << bits) < 4 * k)
        bits++;
    Py_ssize_t size = (Py_ssize_t)1 << bits, at = (top + 1 + btop + 1 + 7) & ~(Py_ssize_t)7;
    /* per actor id: 1 when it is a code, 2 when it is the actor of a pair code; per bucket id: 1 when
       the bucket of a pair code; then the table of the codes (their positions) */
    mark = PyMem_Calloc((size_t)at + 2 * size * sizeof(int64_t), 1);
    if (mark == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    unsigned char *bmark = mark + top + 1;
    int64_t *keys = (int64_t *)(mark + at), *vals = keys + size;
    for (Py_ssize_t j = 0; j < size; j++)
        keys[j] = -1;
    for (Py_ssize_t i = 0; i < k; i++) {
        int64_t c = codes[i];
        if (c < 0)
            continue;
        if (c > 0xFFFFFFFFLL) {
            mark[c & 0xFFFFFFFFLL] |= 2;
            bmark[(c >> 32) - 1] = 1;
        }
        else
            mark[c] |= 1;
        uint64_t j = ((uint64_t)c * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
        while (keys[j] != -1 && keys[j] != c)
            j = (j + 1) & (uint64_t)(size - 1);
        if (keys[j] == -1) {     /* (a repeated code: its first position) */
            keys[j] = c;
            vals[j] = i;
        }
    }
    for (Py_ssize_t r = 0; r < n; r++) {
        int64_t a = actor[r];
        if (a < 0 || a > top || !mark[a])
            continue;
        Py_ssize_t piece = npc > 1 ? r / chunk : 0;
        int64_t i;
        if (mark[a] & 1 && (i = find_code(keys, vals, bits, a)) >= 0)
            out[i * npc + piece]++;
        int64_t b = bid[r];
        if (mark[a] & 2 && b >= 0 && b <= btop && bmark[b]
                && (i = find_code(keys, vals, bits, (int64_t)(((uint64_t)b + 1) << 32) | a)) >= 0)
            out[i * npc + piece]++;
    }
    res = Py_NewRef(Py_None);
done:
    PyMem_Free(mark);
    arrays_release(objs, views, 4, -1);
    return res;
}

/* 0 when every ids[i] (i < n) is in [0, groups), else -1 with IndexError ("<who>: gid out of range"). */
static int
ids_in_range(const int64_t *ids, Py_ssize_t n, Py_ssize_t groups, const char *who)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= groups) {
            PyErr_Format(PyExc_IndexError, "%s: gid out of range", who);
            return -1;
        }
    return 0;
}

/*
 * prune_keep(ts, gid, late, live, floor, late_limit, w, hasval, weight, valued, keep) -> dropped: the test of
 * s3tail.core.rules.vector._Store.prune over one store chunk, in one pass: keep[i] = live[i] and
 * (ts[i] >= floor[gid[i]], or late[i] and ts[i] >= late_limit); every live entry not kept is taken off its
 * gid's sums (weight[gid] -= w[i], valued[gid] -= hasval[i]). ts, floor, weight: float64; gid, w, valued:
 * int64; late, hasval, keep: bool; live: bool, or None (every entry live). Returns how many entries were
 * dropped (live, not kept). Every buffer is checked before anything is written.
 */
static PyObject *
sp_prune_keep(PyObject *self, PyObject *args)
{
    PyObject *o[10];
    double late_limit;
    if (!PyArg_ParseTuple(args, "OOOOOdOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &late_limit, &o[5], &o[6],
                          &o[7], &o[8], &o[9]))
        return NULL;
    /* ts gid late live floor w hasval weight valued keep */
    static const char *const fmt[10] = {"d", "lq", "?", "?", "d", "lq", "?", "d", "lq", "?"};
    static const Py_ssize_t size[10] = {8, 8, 1, 1, 8, 8, 1, 8, 8, 1};
    static const int writable[10] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1};
    Py_buffer v[10];
    PyObject *res = NULL;
    if (arrays_open(o, v, 10, fmt, size, writable, 3, "prune_keep") < 0)
        return NULL;
    const double *ts = v[0].buf, *floor_ = v[4].buf;
    const int64_t *gid = v[1].buf, *w = v[5].buf;
    const unsigned char *late = v[2].buf, *live = o[3] == Py_None ? NULL : v[3].buf, *hasval = v[6].buf;
    double *weight = v[7].buf;
    int64_t *valued = v[8].buf;
    unsigned char *keep = v[9].buf;
    Py_ssize_t n = v[0].shape[0], groups = v[4].shape[0];
    if (v[1].shape[0] != n || v[2].shape[0] != n || (live && v[3].shape[0] != n) || v[5].shape[0] != n
            || v[6].shape[0] != n || v[9].shape[0] != n || v[7].shape[0] != groups || v[8].shape[0] != groups) {
        PyErr_SetString(PyExc_ValueError, "prune_keep: the entries' columns of one length, the sums as floor");
        goto done;
    }
    if (ids_in_range(gid, n, groups, "prune_keep") < 0)
        goto done;
    Py_ssize_t dropped = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t g = gid[i];
        int k = ts[i] >= floor_[g] || (late[i] && ts[i] >= late_limit);
        if (live && !live[i]) {
            keep[i] = 0;
            continue;
        }
        keep[i] = (unsigned char)k;
        if (!k) {
            weight[g] -= (double)w[i];
            valued[g] -= hasval[i] ? 1 : 0;
            dropped++;
        }
    }
    res = PyLong_FromSsize_t(dropped);
done:
    arrays_release(o, v, 10, 3);
    return res;
}

/*
 * running_newest(gid, ts, newest, out): for each entry i in order, out[i] = newest[gid[i]] (the newest
 * time of the gid before the entry: of earlier batches and of the entries before it), then newest[gid[i]]
 * = max(newest[gid[i]], ts[i]) (a NaN time leaves it). gid: int64; ts, newest, out: float64 (newest as
 * long as the gids need). A windowed rule's store marks late entries with it (vector.ColumnRunner.run_window).
 */
static PyObject *
sp_running_newest(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3]))
        return NULL;
    /* gid ts newest out */
    static const char *const fmt[4] = {"lq", "d", "d", "d"};
    static const Py_ssize_t size[4] = {8, 8, 8, 8};
    static const int writable[4] = {0, 0, 1, 1};
    Py_buffer v[4];
    PyObject *res = NULL;
    if (arrays_open(o, v, 4, fmt, size, writable, -1, "running_newest") < 0)
        return NULL;
    const int64_t *gid = v[0].buf;
    const double *ts = v[1].buf;
    double *newest = v[2].buf, *out = v[3].buf;
    Py_ssize_t n = v[0].shape[0], groups = v[2].shape[0];
    if (v[1].shape[0] != n || v[3].shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "running_newest: gid, ts and out of one length");
        goto done;
    }
    if (ids_in_range(gid, n, groups, "running_newest") < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        double *nw = &newest[gid[i]];
        out[i] = *nw;
        if (ts[i] > *nw)
            *nw = ts[i];
    }
    res = Py_NewRef(Py_None);
done:
    arrays_release(o, v, 4, -1);
    return res;
}

/*
 * select_rows(gid, ts, live, flag, since, out) -> k: the entries of a store chunk whose gid is flagged and
 * that are live and not older than their gid's since (s3tail.core.rules.vector._Store.select): their
 * positions, ascending, in out[0..k). gid: int64; ts, since: float64; live: bool, or None (every entry);
 * flag: bool, as long as since; out: int64, as long as gid.
 */
static PyObject *
sp_select_rows(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    if (!PyArg_ParseTuple(args, "OOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5]))
        return NULL;
    /* gid ts live flag since out */
    static const char *const fmt[6] = {"lq", "d", "?", "?", "d", "lq"};
    static const Py_ssize_t size[6] = {8, 8, 1, 1, 8, 8};
    static const int writable[6] = {0, 0, 0, 0, 0, 1};
    Py_buffer v[6];
    PyObject *res = NULL;
    if (arrays_open(o, v, 6, fmt, size, writable, 2, "select_rows") < 0)
        return NULL;
    const int64_t *gid = v[0].buf;
    const double *ts = v[1].buf, *since = v[4].buf;
    const unsigned char *live = o[2] == Py_None ? NULL : v[2].buf, *flag = v[3].buf;
    int64_t *out = v[5].buf;
    Py_ssize_t n = v[0].shape[0], groups = v[3].shape[0], k = 0;
    if (v[1].shape[0] != n || (live && v[2].shape[0] != n) || v[4].shape[0] != groups || v[5].shape[0] < n) {
        PyErr_SetString(PyExc_ValueError, "select_rows: ts, live, out as long as gid, since as long as flag");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t g = gid[i];
        if (g < 0 || g >= groups) {
            PyErr_SetString(PyExc_IndexError, "select_rows: gid out of range");
            goto done;
        }
        if (flag[g] && ts[i] >= since[g] && (!live || live[i]))
            out[k++] = i;
    }
    res = PyLong_FromSsize_t(k);
done:
    arrays_release(o, v, 6, 2);
    return res;
}

/*
 * find_literals(buf, literals, sep) -> list: the numbers (0, 1, ...) of the values of buf, values that
 * each end with the byte sep (the last one too), that contain one of literals (non-empty bytes; a
 * literal may end with sep: then it matches at the end of a value only), ascending, each once. A match
 * belongs to the value its first byte is in. One pass over buf, whatever the number of literals: a
 * byte set of the literals of one byte, a bit set of the first two bytes of the others, then memcmp of
 * the literals with those two bytes. rules.engine.Joined.find uses it (the rules' key, user-agent and
 * text prefilters), when every value ends with the one sep of the buffer.
 */
static PyObject *
sp_find_literals(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    PyObject *lits;
    int sep;
    if (!PyArg_ParseTuple(args, "y*O!i", &buf, &PyTuple_Type, &lits, &sep))
        return NULL;
    PyObject *out = NULL;
    Py_ssize_t nl = PyTuple_GET_SIZE(lits);
    const unsigned char **lp = NULL;
    Py_ssize_t *ll = NULL, *next = NULL;
    Py_ssize_t first[256];
    unsigned char single[256] = {0};
    unsigned char *pair = NULL;
    if (sep < 0 || sep > 255) {
        PyErr_SetString(PyExc_ValueError, "find_literals: sep must be a byte");
        goto done;
    }
    lp = PyMem_Malloc(sizeof(*lp) * (size_t)(nl + 1));
    ll = PyMem_Malloc(sizeof(*ll) * (size_t)(nl + 1));
    next = PyMem_Malloc(sizeof(*next) * (size_t)(nl + 1));
    pair = PyMem_Calloc(8192, 1);
    if (lp == NULL || ll == NULL || next == NULL || pair == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (int c = 0; c < 256; c++)
        first[c] = -1;
    for (Py_ssize_t k = nl - 1; k >= 0; k--) {   /* (each first byte's list in the literals' order) */
        PyObject *b = PyTuple_GET_ITEM(lits, k);
        if (!PyBytes_Check(b) || PyBytes_GET_SIZE(b) == 0) {
            PyErr_SetString(PyExc_TypeError, "find_literals: literals must be non-empty bytes");
            goto done;
        }
        lp[k] = (const unsigned char *)PyBytes_AS_STRING(b);
        ll[k] = PyBytes_GET_SIZE(b);
        if (ll[k] == 1) {
            single[lp[k][0]] = 1;
            continue;
        }
        unsigned v = ((unsigned)lp[k][0] << 8) | lp[k][1];
        pair[v >> 3] |= (unsigned char)(1u << (v & 7));
        next[k] = first[lp[k][0]];
        first[lp[k][0]] = k;
    }
    out = PyList_New(0);
    if (out == NULL)
        goto done;
    const unsigned char *p = buf.buf;
    Py_ssize_t n = buf.len, idx = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        int hit = single[c];
        if (!hit && i + 1 < n) {
            unsigned v = ((unsigned)c << 8) | p[i + 1];
            if (pair[v >> 3] & (1u << (v & 7))) {
                for (Py_ssize_t k = first[c]; k >= 0; k = next[k])
                    if (ll[k] <= n - i && memcmp(p + i, lp[k], (size_t)ll[k]) == 0) {
                        hit = 1;
                        break;
                    }
            }
        }
        if (hit) {
            PyObject *x = PyLong_FromSsize_t(idx);
            if (x == NULL || PyList_Append(out, x) < 0) {
                Py_XDECREF(x);
                Py_CLEAR(out);
                goto done;
            }
            Py_DECREF(x);
            const unsigned char *q = memchr(p + i, sep, (size_t)(n - i));   /* on to the next value */
            if (q == NULL)
                break;
            i = q - p;
            idx++;
            continue;
        }
        if (c == (unsigned char)sep)
            idx++;
    }
done:
    PyMem_Free(lp);
    PyMem_Free(ll);
    PyMem_Free(next);
    PyMem_Free(pair);
    PyBuffer_Release(&buf);
    return out;
}

/* Open the k items of the tuple t as C-contiguous 1-d buffers into v, of item size `size` (and of n
 * items when n >= 0): *opened counts those opened (the caller releases them), lens[j] (when lens) the
 * length of each. -1 with an exception set (TypeError naming `what`). */
static int
open_1d(PyObject *t, Py_buffer *v, int k, Py_ssize_t size, Py_ssize_t n, Py_ssize_t *lens, int *opened,
        const char *what)
{
    for (; *opened < k; (*opened)++) {
        Py_buffer *b = &v[*opened];
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, *opened), b, PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        if (b->ndim != 1 || b->itemsize != size || (n >= 0 && b->shape[0] != n)) {
            (*opened)++;
            PyErr_SetString(PyExc_TypeError, what);
            return -1;
        }
        if (lens != NULL)
            lens[*opened] = b->shape[0];
    }
    return 0;
}

/*
 * gather_and(out, tables, codes): out[i] = tables[0][codes[0][i]] & tables[1][codes[1][i]] & ... for
 * every row i, in one pass: the rules' bit masks per row (s3tail.core.rules.vector._Ctx.bits). out and
 * the tables: contiguous 1-d arrays of one item size (1, 2, 4 or 8 bytes, unsigned); codes: contiguous
 * 1-d int32 arrays of len(out) items (at most 8 tables); a code outside its table raises IndexError.
 */
#define GATHER_AND(T)                                                                      \
    do {                                                                                   \
        T *o_ = (T *)ob.buf;                                                               \
        for (Py_ssize_t i = 0; i < n; i++) {                                               \
            T v = (T)~(T)0;                                                                \
            for (int j = 0; j < k; j++) {                                                  \
                int32_t c = ((const int32_t *)cb[j].buf)[i];                               \
                if (c < 0 || c >= lens[j]) {                                               \
                    PyErr_Format(PyExc_IndexError, "gather_and: code %d out of range", c); \
                    goto done;                                                             \
                }                                                                          \
                v &= ((const T *)tb[j].buf)[c];                                            \
            }                                                                              \
            o_[i] = v;                                                                     \
        }                                                                                  \
    } while (0)

static PyObject *
sp_gather_and(PyObject *self, PyObject *args)
{
    PyObject *out, *tables, *codes;
    if (!PyArg_ParseTuple(args, "OO!O!", &out, &PyTuple_Type, &tables, &PyTuple_Type, &codes))
        return NULL;
    Py_ssize_t kk = PyTuple_GET_SIZE(tables);
    if (kk < 1 || kk > 8 || PyTuple_GET_SIZE(codes) != kk) {
        PyErr_SetString(PyExc_ValueError, "gather_and: 1 to 8 tables, a codes array each");
        return NULL;
    }
    int k = (int)kk, opened_t = 0, opened_c = 0;
    Py_buffer ob, tb[8], cb[8];
    Py_ssize_t lens[8];
    PyObject *res = NULL;
    if (PyObject_GetBuffer(out, &ob, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    Py_ssize_t size = ob.itemsize, n = ob.ndim == 1 ? ob.shape[0] : -1;
    if (n < 0 || (size != 1 && size != 2 && size != 4 && size != 8)) {
        PyErr_SetString(PyExc_TypeError, "gather_and: out must be a 1-d array of 1, 2, 4 or 8-byte items");
        goto done;
    }
    if (open_1d(tables, tb, k, size, -1, lens, &opened_t, "gather_and: the tables must be 1-d, of out's item size") < 0
        || open_1d(codes, cb, k, 4, n, NULL, &opened_c, "gather_and: the codes must be 1-d int32 arrays of len(out) items") < 0)
        goto done;
    switch (size) {
    case 1: GATHER_AND(uint8_t); break;
    case 2: GATHER_AND(uint16_t); break;
    case 4: GATHER_AND(uint32_t); break;
    default: GATHER_AND(uint64_t); break;
    }
    res = Py_NewRef(Py_None);
done:
    for (int j = 0; j < opened_t; j++)
        PyBuffer_Release(&tb[j]);
    for (int j = 0; j < opened_c; j++)
        PyBuffer_Release(&cb[j]);
    PyBuffer_Release(&ob);
    return res;
}
#undef GATHER_AND

/*
 * gather_rows(out, cols, idx): out[i, j] = cols[j][idx[i]] for every row i of idx and column j: rows of
 * several columns at once into a C-contiguous 2-d array (a window store's codes of its entries,
 * s3tail.core.rules.vector.ColumnRunner._run_window), in one pass over idx. out: (len(idx), len(cols)),
 * items of 4 or 8 bytes; cols: contiguous 1-d arrays of out's item size; idx: int64 (numpy intp)
 * indexes, each within every column (else IndexError).
 */
static PyObject *
sp_gather_rows(PyObject *self, PyObject *args)
{
    PyObject *out, *cols, *idx;
    if (!PyArg_ParseTuple(args, "OO!O", &out, &PyTuple_Type, &cols, &idx))
        return NULL;
    Py_ssize_t kk = PyTuple_GET_SIZE(cols);
    if (kk < 1 || kk > 16) {
        PyErr_SetString(PyExc_ValueError, "gather_rows: 1 to 16 columns");
        return NULL;
    }
    int k = (int)kk, opened = 0;
    Py_buffer ob, ib, cb[16];
    PyObject *res = NULL;
    if (PyObject_GetBuffer(out, &ob, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_STRIDES) < 0)
        return NULL;
    if (PyObject_GetBuffer(idx, &ib, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&ob);
        return NULL;
    }
    Py_ssize_t size = ob.itemsize, n = ib.ndim == 1 ? ib.shape[0] : -1;
    if (n < 0 || ib.itemsize != 8 || ob.ndim != 2 || ob.shape[0] != n || ob.shape[1] != k || (size != 4 && size != 8)) {
        PyErr_SetString(PyExc_TypeError, "gather_rows: out (len(idx), len(cols)) of 4 or 8-byte items, idx int64");
        goto done;
    }
    Py_ssize_t lo = PY_SSIZE_T_MAX, lens[16];
    if (open_1d(cols, cb, k, size, -1, lens, &opened, "gather_rows: the columns must be 1-d, of out's item size") < 0)
        goto done;
    for (int j = 0; j < k; j++)
        if (lens[j] < lo)
            lo = lens[j];
    const int64_t *ix = ib.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (ix[i] < 0 || ix[i] >= lo) {
            PyErr_Format(PyExc_IndexError, "gather_rows: index %lld out of range", (long long)ix[i]);
            goto done;
        }
    if (size == 4) {
        int32_t *o = ob.buf;
        for (Py_ssize_t i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                o[i * k + j] = ((const int32_t *)cb[j].buf)[ix[i]];
    } else {
        int64_t *o = ob.buf;
        for (Py_ssize_t i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                o[i * k + j] = ((const int64_t *)cb[j].buf)[ix[i]];
    }
    res = Py_NewRef(Py_None);
done:
    for (int j = 0; j < opened; j++)
        PyBuffer_Release(&cb[j]);
    PyBuffer_Release(&ib);
    PyBuffer_Release(&ob);
    return res;
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
    {"scan_state", sp_scan_state, METH_VARARGS,
     "scan_state(seed, literals=()) -> the raw-composite hash tables scan_block keeps across blocks, and the "
     "literals it looks for in request URIs (a capsule)."},
    {"scan_block", sp_scan_block, METH_VARARGS,
     "scan_block(data, state) -> (n, codes, nums, starts, ends, flags, lits, bases, new): the columnar scan of "
     "a block of access-log lines (see s3tail.core.colblock)."},
    {"scan_tables", sp_scan_tables, METH_NOARGS,
     "scan_tables() -> ((name, direct), ...): the tables scan_block fills, in its order."},
    {"new_objects", sp_new_objects, METH_VARARGS,
     "new_objects(cls, n, names, columns, consts, untrack=False) -> n instances of cls (no __init__), slot "
     "names[i] set from columns[i][k] (or values[idx[k]] of a column (values, idx[, default])), then the rest "
     "from consts; untrack: not tracked by the cyclic GC."},
    {"join_lazy", sp_join_lazy, METH_VARARGS,
     "join_lazy(fs, counts, lasts, src, segs, finding_cls, lazy_cls, parts_cls, max_refs, touched) -> positions "
     "of the findings read already: segments joining open findings (count, last_ts, touched; lazy findings "
     "keep (src, seg, count) as a part of their evidence while under max_refs)."},
    {"take", sp_take, METH_VARARGS,
     "take(values, idx, default=None, addend=None) -> [values[i] for i in idx], None values replaced by "
     "default, then addend added when not None (idx: a 1-d int32 or int64 buffer)."},
    {"hash_ids", sp_hash_ids, METH_VARARGS,
     "hash_ids(keys, vals, codes, out, next_id) -> next_id: out[k] = the id of codes[k] in an open-addressing "
     "int64 hash table, new codes inserted with ids next_id, next_id + 1, ..."},
    {"count_codes", sp_count_codes, METH_VARARGS,
     "count_codes(actor, bid, codes, out, chunk): out[i * npc + row // chunk] += rows whose actor id or "
     "(bucket id + 1) << 32 | actor id is codes[i] (ascending; int64 arrays; windows, task W)."},
    {"prune_keep", sp_prune_keep, METH_VARARGS,
     "prune_keep(ts, gid, late, live, floor, late_limit, w, hasval, weight, valued, keep) -> dropped: one "
     "store chunk's prune test, the dropped entries taken off their gid's sums (windows, task W)."},
    {"gather_rows", sp_gather_rows, METH_VARARGS,
     "gather_rows(out, cols, idx): out[i, j] = cols[j][idx[i]] (a 2-d C-contiguous out of 4 or 8-byte items)."},
    {"gather_and", sp_gather_and, METH_VARARGS,
     "gather_and(out, tables, codes): out[i] = AND over j of tables[j][codes[j][i]] (unsigned items, int32 codes)."},
    {"find_literals", sp_find_literals, METH_VARARGS,
     "find_literals(buf, literals, sep) -> list: the numbers of the sep-ended values holding a literal."},
    {"running_newest", sp_running_newest, METH_VARARGS,
     "running_newest(gid, ts, newest, out): out[i] = newest[gid[i]] before entry i, then newest[gid[i]] = "
     "max(it, ts[i]), in order (late window entries)."},
    {"select_rows", sp_select_rows, METH_VARARGS,
     "select_rows(gid, ts, live, flag, since, out) -> k: out[:k] = the positions of the store chunk's live entries "
     "of flagged gids not older than since[gid] (windows, task W)."},
    {"mark", sp_mark, METH_VARARGS,
     "mark(objs, cls, name, old, new, out, eq_name=None, eq_values=None) -> count: slot name set to new where "
     "it is old (identity) (and slot eq_name == eq_values[k]), the objects set appended to out (a list, or None)."},
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
