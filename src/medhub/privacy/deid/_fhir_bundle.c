/* The FHIR gate's native pass over one Bundle document: parse, de-identify, serialize, per entry.

   This is `deid.fhir_elements.walk` (and the per-resource steps of `deid.fhir.deid_resource`)
   for one whole Bundle held as bytes, with no Python object per JSON value: the document is
   parsed into an array of nodes, each entry's resource is walked by the same rules as the Python
   walk, and its de-identified JSON is written exactly as `orjson.dumps` writes the walked dict.

   Whatever needs a key or a regular expression stays in Python and is asked for through the
   hooks object (`deid.fhir_bundle.BundleHooks`): the meaning of a key, the patient's context and
   shift, free text, Patient references, UIDs, identifiers, notes, contained resources, numbers
   that need float formatting. Whatever this pass does not reproduce exactly is handed back:
   - the whole document (`deid_bundle` returns None) where it is not a Bundle with entries, is not
     JSON as orjson reads it, or holds what the Python path must judge (duplicate keys at the
     Bundle or entry level, odd ids in fullUrl entries, nesting deeper than MAX_DEPTH);
   - one entry (`hooks.fallback(i, entry_json)`) where it is not a resource this pass handles
     exactly: a Patient, a resource that fails the reader's checks, one holding escaped strings,
     duplicate keys, or a date-like value with characters beyond ASCII, or one a hook failed on.
   The Python path then does to that entry exactly what it always did.

   Each row the pass writes carries the SHA-256 digest of its JSON (the lake's content hash),
   computed here with OpenSSL's libcrypto where the build found its headers (MEDHUB_OPENSSL), else
   None, and the lake hashes the JSON itself.

   Kinds of key (must match deid.fhir_elements): PLAIN 0, DATE 1, TEXT 2, IDENT 3, NOTE 4, DROP 5,
   UID 6, SKIP 7, CONTAINED 8, META 9. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <string.h>
#ifdef MEDHUB_OPENSSL
#include <openssl/evp.h> /* the row's content hash (the lake's content_hash): SHA-256 as hashlib computes it */
#endif

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };
enum { K_PLAIN, K_DATE, K_TEXT, K_IDENT, K_NOTE, K_DROP, K_UID, K_SKIP, K_CONTAINED, K_META };

#define F_ESC 1      /* a string with backslash escapes (or a key with them) */
#define F_DUP 4      /* an object with a key twice (or too many keys to tell cheaply) */
#define F_DEL 8      /* a member or item removed by the walk */
#define F_INT 16     /* a number without fraction or exponent */
#define F_KESC 32    /* (subtree flags) a key with escapes below: the Python path takes the resource */

#define MAX_DEPTH 400
#define MAX_NODES (16 * 1024 * 1024)
#define DUP_CHECK_KEYS 64

/* The keys the walk asks about, by id (a member's id is found once, when it is parsed), so that
   "has it", "get it" and "are all its keys among these" are byte compares and bit masks. */
enum {
    KID_other,
    KID_display,
    KID_reference,
    KID_code,
    KID_system,
    KID_contentType,
    KID_data,
    KID_url,
    KID_coding,
    KID_text,
    KID_currency,
    KID_start,
    KID_end,
    KID_category,
    KID_unit,
    KID_value,
    KID_comparator,
    KID_version,
    KID_userSelected,
    KID_lastUpdated,
    KID_tag,
    KID_security,
    KID_profile,
    KID_versionId,
    KID_source,
    KID_reason,
    KID_amount,
    KID_use,
    KID_type,
    KID_period,
    KID_entity,
    KID_entry,
    KID_fullUrl,
    KID_id,
    KID_meta,
    KID_resource,
    KID_resourceType,
    KID_birthDate,
    KID_name,
    KID_telecom,
    KID_photo,
    KID_contact,
    KID_address,
    KID_extension,
    KID_subject,
    KID_patient,
    KID_beneficiary,
    KID_individual,
    KID_for,
    KID_focus,
    KID_target,
    KID_member,
    KID_COUNT
};
static const char *const KEY_NAMES[KID_COUNT] = {
    NULL,
    "display",
    "reference",
    "code",
    "system",
    "contentType",
    "data",
    "url",
    "coding",
    "text",
    "currency",
    "start",
    "end",
    "category",
    "unit",
    "value",
    "comparator",
    "version",
    "userSelected",
    "lastUpdated",
    "tag",
    "security",
    "profile",
    "versionId",
    "source",
    "reason",
    "amount",
    "use",
    "type",
    "period",
    "entity",
    "entry",
    "fullUrl",
    "id",
    "meta",
    "resource",
    "resourceType",
    "birthDate",
    "name",
    "telecom",
    "photo",
    "contact",
    "address",
    "extension",
    "subject",
    "patient",
    "beneficiary",
    "individual",
    "for",
    "focus",
    "target",
    "member",
};

#define B(K) (1ULL << KID_##K)
#define KEY_SLOTS 256
static uint8_t key_slots[KEY_SLOTS]; /* fnv(key) -> id, open addressing, filled at import */

static uint64_t fnv(const char *p, size_t n);

static uint8_t key_lens[KID_COUNT];

/* A cheap hash of a key: its length, first, second and last bytes (every key is parsed once). */
static inline size_t key_hash(const char *k, size_t n) {
    return (n * 131u + (unsigned char)k[0] * 31u + (unsigned char)k[1] * 7u + (unsigned char)k[n - 1]) & (KEY_SLOTS - 1);
}

static void init_key_ids(void) {
    for (int i = 1; i < KID_COUNT; i++) {
        size_t n = strlen(KEY_NAMES[i]);
        key_lens[i] = (uint8_t)n;
        size_t j = key_hash(KEY_NAMES[i], n);
        while (key_slots[j]) j = (j + 1) & (KEY_SLOTS - 1);
        key_slots[j] = (uint8_t)i;
    }
}

/* a[0..n) == b[0..n) for 2 <= n <= 16, by two loads from each that overlap where n is short of
   twice their width (no call to memcmp for a key, and nothing read outside either) */
static inline int same_short(const char *a, const char *b, size_t n) {
    if (n >= 8) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8), memcpy(&a1, a + n - 8, 8), memcpy(&b0, b, 8), memcpy(&b1, b + n - 8, 8);
        return a0 == b0 && a1 == b1;
    }
    if (n >= 4) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4), memcpy(&a1, a + n - 4, 4), memcpy(&b0, b, 4), memcpy(&b1, b + n - 4, 4);
        return a0 == b0 && a1 == b1;
    }
    return a[0] == b[0] && a[n - 1] == b[n - 1] && (n < 3 || a[1] == b[1]);
}

static inline uint8_t key_id(const char *k, size_t n) {
    if (n < 2 || n > 16) return KID_other;
    size_t j = key_hash(k, n);
    while (key_slots[j]) {
        uint8_t id = key_slots[j];
        if (key_lens[id] == n && same_short(KEY_NAMES[id], k, n)) return id;
        j = (j + 1) & (KEY_SLOTS - 1);
    }
    return KID_other;
}

typedef struct {
    uint32_t start, len;   /* the token: a string with its quotes, a number, a literal, a container */
    uint32_t kstart, klen; /* a member's key, without quotes */
    int32_t next, child;   /* next sibling, first child (-1: none) */
    int32_t repl;          /* -1, or the index of the value that replaces this one */
    uint32_t count;        /* live children */
    uint8_t type, flags, kflags, sflags; /* sflags: F_ESC | F_DUP | F_KESC below (subtree) */
    uint8_t kid;                         /* a member's key id (KID_other: none of KEY_NAMES) */
} Node;

typedef struct {
    uint32_t off, len;
    uint8_t json; /* 1: a JSON fragment as it is written; 0: raw string content, escaped when written */
} Repl;

typedef struct {
    char *p;
    size_t n, cap;
} Buf;


/* A string -> string memo for one document: free text cleaned (per patient context), Patient
   references rewritten. Keys and values live in its own arena; it starts over when full. */
typedef struct {
    uint64_t hash;
    uint32_t koff, klen, voff, vlen;
    int used;
} MemoSlot;

typedef struct {
    MemoSlot *slots;
    size_t used, cap;
    Buf arena;
    int bounded; /* a cache: starts over when full (MEMO_MAX_*); else a map that keeps everything */
} Memo;

#define MEMO_MAX_SLOTS (1 << 16)
#define MEMO_MAX_BYTES (16u << 20)

typedef struct {
    const char *d;
    size_t size;
    Node *nodes;
    int32_t n, cap;
    int bad; /* the document is not JSON as orjson reads it, or too big or deep for this pass */
    /* the hooks */
    PyObject *h_kind, *h_resource, *h_text, *h_prefs, *h_uid, *h_subtree, *h_number, *h_fallback;
    int notes_clean;
    /* the Bundle's fullUrl -> Type/id map */
    Memo urls; /* fullUrl -> Type/id */
    Buf scratch;
    PyObject *py_urls; /* the same map as a dict (None when empty) */
    /* per resource */
    long shift;
    int unchecked;
    PyObject *pyctx;
    Buf arena; /* replacement values */
    Repl *repls;
    int32_t nrepl, repl_cap;
    Buf out;
    Memo texts, prefs, idents; /* idents: hooks.ident_value by (accession, system, value) */
    PyObject *texts_ctx; /* the context the text memo holds results for */
    PyObject *last_type, *last_pref; /* the previous row's strings (same_str) */
    PyObject *h_ident;
    int declined; /* this resource is handed back to Python (no exception set) */
    int took_workspace; /* the node array and buffers are the workspace's (see workspace_take) */
    /* the resource context cache: the last patient's, and the one for resources about no patient */
    char last_local[80];
    Py_ssize_t last_local_len; /* -1: empty */
    long last_shift;
    int last_unchecked;
    PyObject *last_ctx;
    int none_valid;
    long none_shift;
    int none_unchecked;
    PyObject *none_ctx;
} Doc;

/* ---------------------------------------------------------------- buffers */

static int buf_reserve(Buf *b, size_t extra) {
    if (b->p && b->n + extra <= b->cap) return 0; /* a buffer is there even for nothing: no memcpy to NULL */
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra) cap *= 2;
    char *p = PyMem_Realloc(b->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static inline int buf_ch(Buf *b, char c) {
    if (b->n + 1 > b->cap && buf_reserve(b, 1) < 0) return -1;
    b->p[b->n++] = c;
    return 0;
}

/* Room for more elements in the array *p of *cap elements of `size` bytes (doubled, or `first`). */
static int grow(void **p, int32_t *cap, size_t size, int32_t first) {
    int32_t c = *cap ? *cap * 2 : first;
    void *q = PyMem_Realloc(*p, size * (size_t)c);
    if (!q) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = c;
    return 0;
}

/* ---------------------------------------------------------------- parsing */

static int32_t new_node(Doc *D, uint8_t type, size_t start) {
    if (D->n >= D->cap) {
        if (D->n >= MAX_NODES) {
            D->bad = 1;
            return -1;
        }
        if (grow((void **)&D->nodes, &D->cap, sizeof(Node), 4096) < 0) return -1;
    }
    Node *x = &D->nodes[D->n];
    x->start = (uint32_t)start;
    x->len = 0;
    x->kstart = x->klen = 0;
    x->next = x->child = x->repl = -1;
    x->count = 0;
    x->type = type;
    x->flags = x->kflags = x->sflags = 0;
    x->kid = KID_other;
    return D->n++;
}

static inline size_t skip_ws(const char *d, size_t i, size_t n) {
    if (i < n && (unsigned char)d[i] > ' ') return i; /* most tokens follow no whitespace at all */
#ifdef __SSE2__
    /* the newlines and indentation of pretty-printed JSON, sixteen bytes at a time */
    const __m128i sp = _mm_set1_epi8(' '), nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), tab = _mm_set1_epi8('\t');
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(d + i));
        __m128i ws = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, nl)),
                                  _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, tab)));
        unsigned other = ~(unsigned)_mm_movemask_epi8(ws) & 0xFFFFu;
        if (other) return i + (size_t)__builtin_ctz(other);
        i += 16;
    }
#endif
    for (;;) {
        while (i + 8 <= n) { /* the indentation of pretty-printed JSON, eight spaces at a time */
            uint64_t w;
            memcpy(&w, d + i, 8);
            if (w != 0x2020202020202020ULL) break;
            i += 8;
        }
        if (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t')) {
            i++;
            continue;
        }
        return i;
    }
}

static inline int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *d, size_t i, size_t n, unsigned *out) {
    if (i + 4 > n) return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(d[i + k]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/* A string at d[i] == '"': its end (one past the closing quote) and flags; 0 on error. */
static size_t scan_string(const char *d, size_t i, size_t n, uint8_t *flags) {
    const unsigned char *u = (const unsigned char *)d;
    i++;
    for (;;) {
#ifdef __SSE2__
        /* the plain ASCII run, sixteen bytes at a time: stop at a quote, a backslash, a control
           byte or a byte beyond ASCII (both below 0x20 as signed bytes) */
        {
            const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
            while (i + 16 <= n) {
                __m128i v = _mm_loadu_si128((const __m128i *)(u + i));
                __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                           _mm_cmplt_epi8(v, space));
                int mask = _mm_movemask_epi8(hit);
                if (mask) {
                    i += (size_t)__builtin_ctz((unsigned)mask);
                    break;
                }
                i += 16;
            }
        }
#endif
        /* the plain ASCII run, eight bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            uint64_t hi = w & 0x8080808080808080ULL;
            uint64_t q = w ^ 0x2222222222222222ULL;   /* '"' */
            uint64_t bs = w ^ 0x5C5C5C5C5C5C5C5CULL;  /* '\\' */
            uint64_t zq = (q - 0x0101010101010101ULL) & ~q;
            uint64_t zb = (bs - 0x0101010101010101ULL) & ~bs;
            uint64_t ctl = (w - 0x2020202020202020ULL) & ~w; /* a byte < 0x20 */
            if ((hi | ((zq | zb | ctl) & 0x8080808080808080ULL)) != 0) break;
            i += 8;
        }
        if (i >= n) return 0;
        unsigned char c = u[i];
        if (c == '"') return i + 1;
        if (c < 0x20) return 0;
        if (c == '\\') {
            *flags |= F_ESC;
            if (i + 1 >= n) return 0;
            char e = d[i + 1];
            if (e == 'u') {
                unsigned v;
                if (hex4(d, i + 2, n, &v) < 0) return 0;
                i += 6;
                if (v >= 0xDC00 && v <= 0xDFFF) return 0; /* a low surrogate alone */
                if (v >= 0xD800 && v <= 0xDBFF) {
                    unsigned w2;
                    if (i + 1 >= n || d[i] != '\\' || d[i + 1] != 'u') return 0;
                    if (hex4(d, i + 2, n, &w2) < 0 || w2 < 0xDC00 || w2 > 0xDFFF) return 0;
                    i += 6;
                }
                continue;
            }
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                i += 2;
                continue;
            }
            return 0;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        /* UTF-8, strictly: no overlong forms, no surrogates, nothing past U+10FFFF */
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (u[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (u[i + 1] & 0xC0) != 0x80 || (u[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && u[i + 1] < 0xA0) return 0;
            if (c == 0xED && u[i + 1] >= 0xA0) return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (u[i + 1] & 0xC0) != 0x80 || (u[i + 2] & 0xC0) != 0x80 || (u[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && u[i + 1] < 0x90) return 0;
            if (c == 0xF4 && u[i + 1] >= 0x90) return 0;
            i += 4;
        } else {
            return 0;
        }
    }
}

static size_t scan_number(const char *d, size_t i, size_t n, uint8_t *flags) {
    size_t s = i;
    int is_int = 1;
    if (i < n && d[i] == '-') i++;
    if (i >= n) return 0;
    if (d[i] == '0') {
        i++;
    } else if (d[i] >= '1' && d[i] <= '9') {
        while (i < n && d[i] >= '0' && d[i] <= '9') i++;
    } else {
        return 0;
    }
    if (i < n && d[i] == '.') {
        is_int = 0;
        i++;
        size_t f = i;
        while (i < n && d[i] >= '0' && d[i] <= '9') i++;
        if (i == f) return 0;
    }
    int has_exp = 0;
    if (i < n && (d[i] == 'e' || d[i] == 'E')) {
        is_int = 0;
        has_exp = 1;
        i++;
        if (i < n && (d[i] == '+' || d[i] == '-')) i++;
        size_t f = i;
        while (i < n && d[i] >= '0' && d[i] <= '9') i++;
        if (i == f) return 0;
    }
    if (is_int) *flags |= F_INT;
    if (has_exp || i - s > 300) {
        /* orjson refuses a number that is infinite as a double (1e400, 400 digits): so does this */
        char small[64], *tmp = i - s < sizeof(small) ? small : PyMem_Malloc(i - s + 1);
        if (!tmp) return 0;
        memcpy(tmp, d + s, i - s);
        tmp[i - s] = 0;
        double v = strtod(tmp, NULL);
        if (tmp != small) PyMem_Free(tmp);
        if (isinf(v)) return 0;
    }
    return i;
}

static int same_key(Doc *D, Node *a, Node *b) {
    if (a->kid != b->kid) return 0;
    if (a->kid != KID_other) return 1;
    return a->klen == b->klen && memcmp(D->d + a->kstart, D->d + b->kstart, a->klen) == 0;
}

/* The node of a scalar token d[i..e) (e == 0: not a valid token, D->bad), the position after it. */
static int32_t scalar(Doc *D, uint8_t type, size_t i, size_t e, uint8_t flags, size_t *pos) {
    if (!e) {
        D->bad = 1;
        return -1;
    }
    int32_t id = new_node(D, type, i);
    if (id < 0) return -1;
    D->nodes[id].len = (uint32_t)(e - i);
    D->nodes[id].flags = flags;
    *pos = e;
    return id;
}

/* Parse one value at d[*pos]; returns its node, or -1 (D->bad set, or an exception). */
static int32_t parse_value(Doc *D, size_t *pos, int depth) {
    const char *d = D->d;
    size_t n = D->size, i = skip_ws(d, *pos, n);
    if (i >= n || depth > MAX_DEPTH) {
        D->bad = 1;
        return -1;
    }
    char c = d[i];
    int32_t id;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        id = new_node(D, obj ? J_OBJ : J_ARR, i);
        if (id < 0) return -1;
        i = skip_ws(d, i + 1, n);
        int32_t last = -1;
        uint8_t sflags = 0;
        if (i < n && d[i] == (obj ? '}' : ']')) {
            i++;
        } else {
            for (;;) {
                uint32_t kstart = 0, klen = 0;
                uint8_t kflags = 0;
                if (obj) {
                    i = skip_ws(d, i, n);
                    if (i >= n || d[i] != '"') {
                        D->bad = 1;
                        return -1;
                    }
                    size_t e = scan_string(d, i, n, &kflags);
                    if (!e) {
                        D->bad = 1;
                        return -1;
                    }
                    kstart = (uint32_t)(i + 1);
                    klen = (uint32_t)(e - i - 2);
                    i = skip_ws(d, e, n);
                    if (i >= n || d[i] != ':') {
                        D->bad = 1;
                        return -1;
                    }
                    i++;
                }
                int32_t child = parse_value(D, &i, depth + 1);
                if (child < 0) return -1;
                Node *ch = &D->nodes[child];
                ch->kstart = kstart;
                ch->klen = klen;
                ch->kflags = kflags;
                if (obj) ch->kid = key_id(D->d + kstart, klen);
                sflags |= ch->sflags | ((kflags & F_ESC) ? F_KESC : 0) | (ch->flags & (F_ESC | F_DUP));
                if (last < 0)
                    D->nodes[id].child = child;
                else
                    D->nodes[last].next = child;
                last = child;
                D->nodes[id].count++;
                i = skip_ws(d, i, n);
                if (i < n && d[i] == ',') {
                    i++;
                    continue;
                }
                if (i < n && d[i] == (obj ? '}' : ']')) {
                    i++;
                    break;
                }
                D->bad = 1;
                return -1;
            }
        }
        Node *x = &D->nodes[id];
        x->len = (uint32_t)(i - x->start);
        x->sflags = sflags;
        if (obj && x->count > 1) {
            if (x->count > DUP_CHECK_KEYS) {
                x->flags |= F_DUP; /* too many keys to compare pairwise: the Python path judges */
            } else {
                for (int32_t a = x->child; a >= 0 && !(x->flags & F_DUP); a = D->nodes[a].next)
                    for (int32_t b = D->nodes[a].next; b >= 0; b = D->nodes[b].next)
                        if (same_key(D, &D->nodes[a], &D->nodes[b])) {
                            x->flags |= F_DUP;
                            break;
                        }
            }
            if (x->flags & F_DUP) x->sflags |= F_DUP;
        }
        *pos = i;
        return id;
    }
    uint8_t fl = 0; /* set by the scan, so the scan comes first: not in the same call's arguments */
    if (c == '"') {
        size_t e = scan_string(d, i, n, &fl);
        return scalar(D, J_STR, i, e, fl, pos);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t e = scan_number(d, i, n, &fl);
        return scalar(D, J_NUM, i, e, fl, pos);
    }
    const char *lit = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : NULL;
    if (lit) {
        size_t l = strlen(lit);
        if (i + l <= n && memcmp(d + i, lit, l) == 0)
            return scalar(D, c == 't' ? J_TRUE : c == 'f' ? J_FALSE : J_NULL, i, i + l, 0, pos);
    }
    D->bad = 1;
    return -1;
}

/* ---------------------------------------------------------------- node access */

#define NODE(i) (&D->nodes[(i)])

/* The live member of object `o` whose key has id `kid` (-1: none). */
static inline int32_t get_id(Doc *D, int32_t o, uint8_t kid) {
    for (int32_t m = NODE(o)->child; m >= 0; m = NODE(m)->next)
        if (NODE(m)->kid == kid && !(NODE(m)->flags & F_DEL)) return m;
    return -1;
}
#define GET(o, K) get_id(D, (o), KID_##K)
#define HAS(o, K) (GET(o, K) >= 0)

static void del(Doc *D, int32_t parent, int32_t m) {
    if (!(NODE(m)->flags & F_DEL)) {
        NODE(m)->flags |= F_DEL;
        NODE(parent)->count--;
    }
}

static inline int key_in(Doc *D, int32_t m, uint64_t set) { return ((1ULL << NODE(m)->kid) & set) != 0; }

/* Whether every live key of object `o` is one of `set` (`_only`; KID_other is in no set). */
static int only(Doc *D, int32_t o, uint64_t set) {
    for (int32_t m = NODE(o)->child; m >= 0; m = NODE(m)->next)
        if (!(NODE(m)->flags & F_DEL) && !key_in(D, m, set)) return 0;
    return 1;
}

/* The current value of a string node: its replacement, or its content as sent (no escapes). */
static void cur(Doc *D, int32_t s, const char **p, size_t *n) {
    Node *x = NODE(s);
    if (x->repl >= 0) {
        Repl *r = &D->repls[x->repl];
        *p = D->arena.p + r->off;
        *n = r->len;
    } else {
        *p = D->d + x->start + 1;
        *n = x->len - 2;
    }
}

/* A string node's current type: J_STR unless replaced by a JSON fragment. */
static inline int is_str(Doc *D, int32_t s) {
    Node *x = NODE(s);
    return x->type == J_STR && (x->repl < 0 || !D->repls[x->repl].json);
}

static int set_value(Doc *D, int32_t s, const char *p, size_t n, int json) {
    /* p may point into the arena itself: keep its offset across a reallocation */
    ptrdiff_t inside = (D->arena.p && p >= D->arena.p && p < D->arena.p + D->arena.n) ? p - D->arena.p : -1;
    if (buf_reserve(&D->arena, n) < 0) return -1;
    if (inside >= 0) p = D->arena.p + inside;
    if (D->nrepl >= D->repl_cap && grow((void **)&D->repls, &D->repl_cap, sizeof(Repl), 64) < 0) return -1;
    Repl *r = &D->repls[D->nrepl];
    r->off = (uint32_t)D->arena.n;
    r->len = (uint32_t)n;
    r->json = (uint8_t)json;
    memmove(D->arena.p + D->arena.n, p, n);
    D->arena.n += n;
    NODE(s)->repl = D->nrepl++;
    return 0;
}

static inline int contains(const char *p, size_t n, const char *lit, size_t l) {
    if (n < l) return 0;
    const char *e = p + n - l;
    for (const char *q = p; q <= e; q++) {
        q = memchr(q, lit[0], (size_t)(e - q) + 1);
        if (!q) return 0;
        if (memcmp(q, lit, l) == 0) return 1;
    }
    return 0;
}
#define HAS_PATIENT(p, n) contains((p), (n), "Patient/", 8)

static inline int ascii(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80) return 0;
    return 1;
}

/* Python's len(s) >= 10 and s[4] == '-' (and s[7] == '-' where `both`), by code points. */
static int dashed(const char *p, size_t n, int both) {
    size_t chars = 0, i = 0;
    char c4 = 0, c7 = 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c & 0xC0) == 0x80) continue;
        if (chars == 4) c4 = (char)c;
        if (chars == 7) c7 = (char)c;
        chars++;
        if (chars >= 10) break;
    }
    return chars >= 10 && c4 == '-' && (!both || c7 == '-');
}

/* ---------------------------------------------------------------- hooks */

static PyObject *py_str(const char *p, size_t n) { return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict"); }

/* Call `hook(ctx?, value)` on a string and make its str result the node's value. */
static int hook_string(Doc *D, PyObject *hook, int with_ctx, int32_t s, const char *p, size_t n) {
    PyObject *v = py_str(p, n);
    if (!v) return -1;
    PyObject *r = with_ctx ? PyObject_CallFunctionObjArgs(hook, D->pyctx, v, NULL) : PyObject_CallOneArg(hook, v);
    Py_DECREF(v);
    if (!r) return -1;
    if (!PyUnicode_Check(r)) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "a FHIR gate hook returned a non-string");
        return -1;
    }
    Py_ssize_t rn;
    const char *rp = PyUnicode_AsUTF8AndSize(r, &rn);
    if (!rp) {
        Py_DECREF(r);
        return -1;
    }
    int rc = set_value(D, s, rp, (size_t)rn, 0);
    Py_DECREF(r);
    return rc;
}

/* ---------------------------------------------------------------- memos */

static void memo_clear(Memo *m) {
    if (m->slots) memset(m->slots, 0, m->cap * sizeof(MemoSlot));
    m->used = 0;
    m->arena.n = 0;
}

static MemoSlot *memo_slot(Memo *m, const char *p, size_t n, uint64_t h) {
    size_t j = (size_t)h & (m->cap - 1);
    while (m->slots[j].used) {
        MemoSlot *x = &m->slots[j];
        if (x->hash == h && x->klen == n && memcmp(m->arena.p + x->koff, p, n) == 0) return x;
        j = (j + 1) & (m->cap - 1);
    }
    return &m->slots[j];
}

static int memo_find(Memo *m, const char *p, size_t n, const char **vp, size_t *vn) {
    if (!m->slots) return 0;
    MemoSlot *x = memo_slot(m, p, n, fnv(p, n));
    if (!x->used) return 0;
    *vp = m->arena.p + x->voff;
    *vn = x->vlen;
    return 1;
}

/* Remember p -> v (a later value for the same key replaces the earlier one). */
static int memo_put(Memo *m, const char *p, size_t n, uint64_t h, const char *v, size_t vn) {
    if (m->bounded && (m->used >= MEMO_MAX_SLOTS || m->arena.n + n + vn > MEMO_MAX_BYTES)) memo_clear(m);
    if (m->arena.n + n + vn > UINT32_MAX) {
        PyErr_SetString(PyExc_MemoryError, "a FHIR Bundle pass table outgrew its 4 GB arena");
        return -1;
    }
    if (!m->slots || (m->used + 1) * 2 > m->cap) { /* start small, double at half full */
        size_t cap = m->slots ? m->cap * 2 : 1024;
        MemoSlot *t = PyMem_Calloc(cap, sizeof(MemoSlot));
        if (!t) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].used) continue;
            size_t j = (size_t)m->slots[i].hash & (cap - 1);
            while (t[j].used) j = (j + 1) & (cap - 1);
            t[j] = m->slots[i];
        }
        PyMem_Free(m->slots);
        m->slots = t;
        m->cap = cap;
    }
    MemoSlot *x = memo_slot(m, p, n, h);
    if (x->used) { /* the key is there: the new value after it */
        if (buf_reserve(&m->arena, vn) < 0) return -1;
        x->voff = (uint32_t)m->arena.n;
        x->vlen = (uint32_t)vn;
        memcpy(m->arena.p + m->arena.n, v, vn);
        m->arena.n += vn;
        return 0;
    }
    if (buf_reserve(&m->arena, n + vn) < 0) return -1;
    x->used = 1;
    x->hash = h;
    x->koff = (uint32_t)m->arena.n;
    x->klen = (uint32_t)n;
    memcpy(m->arena.p + m->arena.n, p, n);
    m->arena.n += n;
    x->voff = (uint32_t)m->arena.n;
    x->vlen = (uint32_t)vn;
    memcpy(m->arena.p + m->arena.n, v, vn);
    m->arena.n += vn;
    m->used++;
    return 0;
}

/* hook_string, remembered: the hooks it serves are pure functions of the value (and of the
   context, for which the text memo is cleared whenever the context changes). */
static int hook_string_memo(Doc *D, Memo *m, PyObject *hook, int with_ctx, int32_t s, const char *p, size_t n) {
    uint64_t h = fnv(p, n);
    if (m->slots) {
        MemoSlot *x = memo_slot(m, p, n, h);
        if (x->used) return set_value(D, s, m->arena.p + x->voff, x->vlen, 0);
    }
    char small[256], *key = n <= sizeof(small) ? small : PyMem_Malloc(n ? n : 1);
    if (!key) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(key, p, n);
    int rc = hook_string(D, hook, with_ctx, s, key, n);
    if (rc == 0) {
        const char *v;
        size_t vn;
        cur(D, s, &v, &vn);
        rc = memo_put(m, key, n, h, v, vn);
    }
    if (key != small) PyMem_Free(key);
    return rc;
}
/* ---------------------------------------------------------------- kinds of key */

typedef struct {
    char key[48];
    uint8_t klen, kind, used;
} KindSlot;
#define KIND_SLOTS 4096
static KindSlot kind_cache[KIND_SLOTS];
static int kind_cached = 0;

/* A hash of a string for this module's tables, eight bytes at a time (not for anything secret). */
static uint64_t fnv(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL ^ (n * 0x9E3779B97F4A7C15ULL);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001B3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h ^ (h >> 32);
}

static int8_t kind_by_kid[KID_COUNT]; /* 0: not asked yet, else kind + 1 */

static int kind_of_key(Doc *D, int32_t m);

static inline int kind_of(Doc *D, int32_t m) {
    uint8_t kid = NODE(m)->kid;
    if (kid != KID_other && kind_by_kid[kid]) return kind_by_kid[kid] - 1;
    int kind = kind_of_key(D, m);
    if (kind >= 0 && kid != KID_other) kind_by_kid[kid] = (int8_t)(kind + 1);
    return kind;
}

static int kind_of_key(Doc *D, int32_t m) {
    Node *x = NODE(m);
    const char *k = D->d + x->kstart;
    size_t kl = x->klen;
    KindSlot *slot = NULL;
    if (kl < sizeof(kind_cache[0].key)) {
        size_t h = (size_t)(fnv(k, kl) & (KIND_SLOTS - 1));
        for (int probe = 0; probe < 8; probe++) {
            KindSlot *s = &kind_cache[(h + (size_t)probe) & (KIND_SLOTS - 1)];
            if (!s->used) {
                slot = s;
                break;
            }
            if (s->klen == kl && memcmp(s->key, k, kl) == 0) return s->kind;
        }
    }
    PyObject *key = py_str(k, kl);
    if (!key) return -1;
    PyObject *r = PyObject_CallOneArg(D->h_kind, key);
    Py_DECREF(key);
    if (!r) return -1;
    long kind = PyLong_AsLong(r);
    Py_DECREF(r);
    if (kind < 0 || kind > K_META) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "unknown kind of FHIR key");
        return -1;
    }
    if (slot && kind_cached < KIND_SLOTS / 2) {
        memcpy(slot->key, k, kl);
        slot->klen = (uint8_t)kl;
        slot->kind = (uint8_t)kind;
        slot->used = 1;
        kind_cached++;
    }
    return (int)kind;
}

/* ---------------------------------------------------------------- the Bundle's fullUrl map */

static int url_put(Doc *D, const char *full, size_t fn, const char *v1, size_t n1, const char *v2, size_t n2) {
    D->scratch.n = 0;
    if (buf_put(&D->scratch, v1, n1) < 0 || buf_ch(&D->scratch, '/') < 0 || buf_put(&D->scratch, v2, n2) < 0) return -1;
    return memo_put(&D->urls, full, fn, fnv(full, fn), D->scratch.p, D->scratch.n);
}

/* `refs.get(p, p)`: the Type/id a `urn:uuid:` fullUrl stands for (1), or none (0). */
static int url_get(Doc *D, const char *p, size_t n, const char **vp, size_t *vn) {
    return memo_find(&D->urls, p, n, vp, vn);
}

/* ---------------------------------------------------------------- dates (deid.dates.shift_fhir) */

static inline int dig(char c) { return c >= '0' && c <= '9'; }

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int valid_date(int y, int m, int d) {
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= dim[m - 1] + (m == 2 && leap);
}

/* shift_fhir on an ASCII value of the shape YYYY, YYYY-MM or YYYY-MM-DD: 1 and the shifted value in
   out (same precision), 0 where it is not a calendar date (None), -1 where the shift leaves the
   years 1-9999 (Python raises: the Python path judges). */
static int shift_day(const char *p, size_t n, long shift, char *out) {
    int y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    int m = n >= 7 ? (p[5] - '0') * 10 + (p[6] - '0') : 1;
    int d = n >= 10 ? (p[8] - '0') * 10 + (p[9] - '0') : 1;
    if (!valid_date(y, m, d)) return 0;
    int64_t yy;
    unsigned mm, dd;
    civil_from_days(days_from_civil(y, (unsigned)m, (unsigned)d) + shift, &yy, &mm, &dd);
    if (yy < 1 || yy > 9999) return -1;
    int y4 = (int)yy;
    out[0] = (char)('0' + y4 / 1000);
    out[1] = (char)('0' + y4 / 100 % 10);
    out[2] = (char)('0' + y4 / 10 % 10);
    out[3] = (char)('0' + y4 % 10);
    out[4] = 0;
    if (n >= 7) {
        out[4] = '-';
        out[5] = (char)('0' + mm / 10);
        out[6] = (char)('0' + mm % 10);
        out[7] = 0;
    }
    if (n >= 10) {
        out[7] = '-';
        out[8] = (char)('0' + dd / 10);
        out[9] = (char)('0' + dd % 10);
        out[10] = 0;
    }
    return 1;
}

/* Whether an ASCII value matches DATE_VALUE:
   ^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$ */
static int date_value(const char *p, size_t n) {
    size_t i = 0;
#define D2(at) ((at) + 2 <= n && dig(p[at]) && dig(p[(at) + 1]))
    if (n < 4 || !dig(p[0]) || !dig(p[1]) || !dig(p[2]) || !dig(p[3])) return 0;
    i = 4;
    if (i == n) return 1;
    if (p[i] != '-' || !D2(i + 1)) return 0;
    i += 3;
    if (i == n) return 1;
    if (p[i] != '-' || !D2(i + 1)) return 0;
    i += 3;
    if (i == n) return 1;
    if (p[i] != 'T' || !D2(i + 1) || i + 3 >= n || p[i + 3] != ':' || !D2(i + 4)) return 0;
    i += 6;
    if (i < n && p[i] == ':') {
        if (!D2(i + 1)) return 0;
        i += 3;
        if (i < n && p[i] == '.') {
            size_t f = ++i;
            while (i < n && dig(p[i])) i++;
            if (i == f) return 0;
        }
    }
    if (i < n && p[i] == 'Z') {
        i++;
    } else if (i < n && (p[i] == '+' || p[i] == '-')) {
        if (!D2(i + 1) || i + 3 >= n || p[i + 3] != ':' || !D2(i + 4)) return 0;
        i += 6;
    }
    return i == n;
#undef D2
}

/* DATE_VALUE.match, whose $ also matches before a final newline (only an escaped string has one). */
static int date_value_re(const char *p, size_t n) {
    return date_value(p, n) || (n > 0 && p[n - 1] == '\n' && date_value(p, n - 1));
}

/* shifted_date(value, shift): 1 with the node's value replaced (or kept: a date that is not a
   calendar date stays as it is), 0 where the value is not date-shaped (None), -1 decline/error. */
static int shifted_date(Doc *D, int32_t s, const char *p, size_t n) {
    if (!ascii(p, n)) {
        D->declined = 1; /* \d is any Unicode digit in Python: the Python path judges */
        return -1;
    }
    if (!date_value_re(p, n)) return 0;
    char day[11];
    /* up to ten characters, shift_fhir's own regex drops a final newline from what it writes */
    size_t head = n > 10 ? 10 : (p[n - 1] == '\n' ? n - 1 : n);
    int r = shift_day(p, head, D->shift, day);
    if (r < 0) {
        D->declined = 1;
        return -1;
    }
    if (r == 0) return 1; /* kept as sent */
    size_t dl = strlen(day);
    if (n <= 10) return set_value(D, s, day, dl, 0) < 0 ? -1 : 1;
    char tmp[256];
    if (dl + (n - 10) <= sizeof(tmp)) {
        memcpy(tmp, day, dl);
        memcpy(tmp + dl, p + 10, n - 10);
        return set_value(D, s, tmp, dl + n - 10, 0) < 0 ? -1 : 1;
    }
    D->declined = 1;
    return -1;
}

/* ---------------------------------------------------------------- escaped strings */

static void put_utf8(char *o, size_t *k, unsigned cp) {
    if (cp < 0x80) {
        o[(*k)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*k)++] = (char)(0xC0 | (cp >> 6));
        o[(*k)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*k)++] = (char)(0xE0 | (cp >> 12));
        o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*k)++] = (char)(0xF0 | (cp >> 18));
        o[(*k)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* Every escaped string of the resource `res` replaced by its value (escapes checked when parsed):
   the walk then reads values, and the writer escapes them again as orjson does. */
static int decode_strings(Doc *D, int32_t res) {
    uint32_t end = NODE(res)->start + NODE(res)->len;
    for (int32_t k = res; k < D->n && NODE(k)->start < end; k++) {
        Node *x = NODE(k);
        if (x->type != J_STR || !(x->flags & F_ESC) || x->repl >= 0) continue;
        const char *p = D->d + x->start + 1;
        size_t n = x->len - 2, o = 0;
        if (buf_reserve(&D->out, n) < 0) return -1; /* decoded is never longer: the output buffer as scratch */
        char *q = D->out.p;
        for (size_t i = 0; i < n;) {
            if (p[i] != '\\') {
                q[o++] = p[i++];
                continue;
            }
            char e = p[i + 1];
            i += 2;
            switch (e) {
                case 'b': q[o++] = '\b'; break;
                case 'f': q[o++] = '\f'; break;
                case 'n': q[o++] = '\n'; break;
                case 'r': q[o++] = '\r'; break;
                case 't': q[o++] = '\t'; break;
                case 'u': {
                    unsigned cp, lo;
                    hex4(p, i, n, &cp);
                    i += 4;
                    if (cp >= 0xD800 && cp <= 0xDBFF) { /* a pair, checked when parsed */
                        hex4(p, i + 2, n, &lo);
                        i += 6;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    put_utf8(q, &o, cp);
                    break;
                }
                default: q[o++] = e; /* " \\ / */
            }
        }
        if (set_value(D, k, q, o, 0) < 0) return -1;
    }
    D->out.n = 0;
    return 0;
}

/* ---------------------------------------------------------------- the walk (deid.fhir_elements) */

static int walk(Doc *D, int32_t node);
static int element(Doc *D, int32_t v);
static int walk_list(Doc *D, int32_t items, int kind);

#define TRY(x)                  \
    do {                        \
        if ((x) < 0) return -1; \
    } while (0)

static int patient_refs(Doc *D, int32_t s, const char *p, size_t n) {
    return hook_string_memo(D, &D->prefs, D->h_prefs, 0, s, p, n);
}

static int text_hook(Doc *D, int32_t s, const char *p, size_t n) {
    return hook_string_memo(D, &D->texts, D->h_text, 1, s, p, n);
}

/* _plain: a Patient reference rewritten, a full date shifted. */
static int plain(Doc *D, int32_t s) {
    const char *p;
    size_t n;
    cur(D, s, &p, &n);
    if (HAS_PATIENT(p, n)) return patient_refs(D, s, p, n);
    if (D->shift && dashed(p, n, 1)) {
        int r = shifted_date(D, s, p, n);
        if (r < 0) return -1;
    }
    return 0;
}

/* _string(kind, value) for a string node. */
static int string_kind(Doc *D, int kind, int32_t s) {
    const char *p;
    size_t n;
    cur(D, s, &p, &n);
    if (kind == K_DATE) {
        if (D->shift) {
            int r = shifted_date(D, s, p, n);
            if (r < 0) return -1;
            if (r > 0) return 0;
        }
    } else if (kind == K_TEXT) {
        return text_hook(D, s, p, n);
    } else if (kind == K_UID) {
        return hook_string(D, D->h_uid, 0, s, p, n);
    }
    if (HAS_PATIENT(p, n)) return patient_refs(D, s, p, n);
    return 0;
}

/* _reference(r, target) */
static int reference(Doc *D, int32_t target) {
    const char *p;
    size_t n;
    cur(D, target, &p, &n);
    if (D->py_urls != Py_None && n >= 9 && memcmp(p, "urn:uuid:", 9) == 0) {
        const char *vp;
        size_t vn;
        if (url_get(D, p, n, &vp, &vn)) {
            TRY(set_value(D, target, vp, vn, 0));
            cur(D, target, &p, &n);
        }
    }
    if (HAS_PATIENT(p, n) || (D->shift && dashed(p, n, 0))) return plain(D, target);
    return 0;
}

static int primitive(Doc *D, int32_t x, int none_too) {
    Node *v = NODE(x);
    if (v->type == J_STR) {
        const char *p;
        size_t n;
        if (!is_str(D, x)) return 0;
        cur(D, x, &p, &n);
        return !HAS_PATIENT(p, n);
    }
    return v->type == J_NUM || v->type == J_TRUE || v->type == J_FALSE || (none_too && v->type == J_NULL);
}

static int flat(Doc *D, int32_t o) {
    for (int32_t m = NODE(o)->child; m >= 0; m = NODE(m)->next)
        if (!(NODE(m)->flags & F_DEL) && !primitive(D, m, 1)) return 0;
    return 1;
}

#define CODING_KEYS (B(system) | B(version) | B(code) | B(display) | B(userSelected))
#define CONCEPT_KEYS (B(coding) | B(text))
#define REFERENCE_KEYS (B(reference) | B(display))
#define META_KEYS (B(lastUpdated) | B(tag) | B(security) | B(profile) | B(versionId) | B(source))
#define PERIOD_KEYS (B(start) | B(end))
#define QUANTITY_KEYS (B(value) | B(comparator) | B(unit) | B(system) | B(code))
#define MONEY_KEYS (B(value) | B(currency))
#define ADJUDICATION_KEYS (B(category) | B(reason) | B(amount) | B(value))

static int is_coding(Doc *D, int32_t c) {
    if (NODE(c)->type != J_OBJ || NODE(c)->repl >= 0) return 0;
    for (int32_t m = NODE(c)->child; m >= 0; m = NODE(m)->next) {
        if (NODE(m)->flags & F_DEL) continue;
        if (!key_in(D, m, CODING_KEYS) || !primitive(D, m, 0)) return 0;
    }
    return HAS(c, code) || HAS(c, system);
}

static int codings(Doc *D, int32_t items) {
    for (int32_t m = NODE(items)->child; m >= 0; m = NODE(m)->next)
        if (!(NODE(m)->flags & F_DEL) && !is_coding(D, m)) return 0;
    return 1;
}

/* A container node's current type (a node replaced by a hook's JSON is not walked again). */
static inline int ctype(Doc *D, int32_t x) {
    return NODE(x)->repl >= 0 && D->repls[NODE(x)->repl].json ? -1 : NODE(x)->type;
}

static int enter(Doc *D, int32_t v, int kind) {
    int t = ctype(D, v);
    if (t == J_OBJ) return kind == K_PLAIN ? element(D, v) : walk(D, v);
    if (t == J_ARR) return walk_list(D, v, kind);
    return 0;
}

/* _value(node, k, kind) for the member m */
static int value(Doc *D, int32_t m, int kind) {
    if (is_str(D, m)) return kind == K_PLAIN ? plain(D, m) : string_kind(D, kind, m);
    return enter(D, m, kind);
}

static int concept(Doc *D, int32_t cc) {
    int32_t text = GET(cc, text);
    if (text < 0) return 0;
    if (is_str(D, text)) {
        if (D->unchecked) {
            del(D, cc, text);
            return 0;
        }
        const char *p;
        size_t n;
        cur(D, text, &p, &n);
        return text_hook(D, text, p, n);
    }
    if (NODE(text)->type != J_NULL) return walk(D, cc);
    return 0;
}

static int period(Doc *D, int32_t o) {
    for (int32_t m = NODE(o)->child; m >= 0; m = NODE(m)->next) {
        if (NODE(m)->flags & F_DEL) continue;
        if (is_str(D, m))
            TRY(string_kind(D, K_DATE, m)); /* a date shifted, else a Patient reference rewritten */
        else
            TRY(enter(D, m, K_DATE));
    }
    return 0;
}

static int meta(Doc *D, int32_t o) {
    for (int32_t m = NODE(o)->child; m >= 0; m = NODE(m)->next) {
        if (NODE(m)->flags & F_DEL) continue;
        if ((NODE(m)->kid == KID_tag || NODE(m)->kid == KID_security) && ctype(D, m) == J_ARR && codings(D, m)) continue;
        TRY(value(D, m, NODE(m)->kid == KID_lastUpdated ? K_DATE : K_PLAIN));
    }
    return 0;
}

/* The two shapes `walk` and `walk_list` settle without a call: a one-key Reference, Codings alone.
   1: settled; 0: not one of them. */
static int one_key_shapes(Doc *D, int32_t v) {
    if (NODE(v)->count != 1) return 0;
    int32_t ref = GET(v, reference);
    if (ref >= 0 && is_str(D, ref)) return reference(D, ref) < 0 ? -1 : 1;
    int32_t coding = GET(v, coding);
    if (coding >= 0 && ctype(D, coding) == J_ARR && codings(D, coding)) return 1;
    return 0;
}

static int element(Doc *D, int32_t v) {
    if (HAS(v, coding)) {
        if (only(D, v, CONCEPT_KEYS)) {
            int32_t coding = GET(v, coding);
            if (ctype(D, coding) == J_ARR && codings(D, coding)) {
                if (HAS(v, text)) return concept(D, v);
                return 0;
            }
        }
    } else if (HAS(v, reference) || HAS(v, display)) {
        if (only(D, v, REFERENCE_KEYS)) {
            int32_t disp = GET(v, display);
            if (disp >= 0) del(D, v, disp);
            int32_t target = GET(v, reference);
            if (target >= 0) {
                if (is_str(D, target)) return reference(D, target);
                if (NODE(target)->type != J_NULL) return enter(D, target, K_PLAIN);
            }
            return 0;
        }
    } else if (HAS(v, currency)) {
        if (only(D, v, MONEY_KEYS) && flat(D, v)) return 0;
    } else if (HAS(v, start) || HAS(v, end)) {
        if (only(D, v, PERIOD_KEYS)) return period(D, v);
    } else if (HAS(v, category)) {
        if (only(D, v, ADJUDICATION_KEYS)) {
            for (int32_t m = NODE(v)->child; m >= 0; m = NODE(m)->next)
                if (!(NODE(m)->flags & F_DEL)) TRY(value(D, m, K_PLAIN));
            return 0;
        }
    } else if (HAS(v, text)) {
        if (NODE(v)->count == 1) return concept(D, v);
    } else if ((HAS(v, unit) || HAS(v, code)) && only(D, v, QUANTITY_KEYS) && flat(D, v)) {
        return 0;
    }
    return walk(D, v);
}

#define IDENT_KEYS (B(use) | B(type) | B(system) | B(value) | B(period))

/* Whether `identifiers` can be done here: a list whose objects have string (or no) system and
   value, and a type whose coding is absent, null or a list (anything else: the Python hook). */
static int identifiers_here(Doc *D, int32_t v) {
    if (ctype(D, v) != J_ARR) return 0;
    for (int32_t x = NODE(v)->child; x >= 0; x = NODE(x)->next) {
        if (ctype(D, x) != J_OBJ) continue;
        int32_t sys = GET(x, system), val = GET(x, value), t = GET(x, type);
        if ((sys >= 0 && !is_str(D, sys)) || (val >= 0 && !is_str(D, val))) return 0;
        if (t >= 0 && ctype(D, t) == J_OBJ) {
            int32_t c = GET(t, coding);
            if (c >= 0 && NODE(c)->type != J_NULL && ctype(D, c) != J_ARR) return 0;
        }
    }
    return 1;
}

static int is_accession(Doc *D, int32_t x) {
    int32_t t = GET(x, type);
    if (t < 0 || ctype(D, t) != J_OBJ) return 0;
    int32_t c = GET(t, coding);
    if (c < 0 || ctype(D, c) != J_ARR) return 0;
    for (int32_t i = NODE(c)->child; i >= 0; i = NODE(i)->next) {
        if (ctype(D, i) != J_OBJ) continue;
        int32_t code = GET(i, code);
        if (code >= 0 && is_str(D, code)) {
            const char *p;
            size_t n;
            cur(D, code, &p, &n);
            if (n == 4 && memcmp(p, "ACSN", 4) == 0) return 1;
        }
    }
    return 0;
}

/* deid.fhir_elements.identifiers on a list (identifiers_here): objects only, their keys use, type,
   system, value and period only, the value by hooks.ident_value, a type beyond Codings and a period
   walked; the key removed where no identifier is left. */
static int identifiers(Doc *D, int32_t parent, int32_t v) {
    int kept = 0;
    for (int32_t x = NODE(v)->child; x >= 0; x = NODE(x)->next) {
        if (NODE(x)->flags & F_DEL) continue;
        if (ctype(D, x) != J_OBJ) {
            del(D, v, x);
            continue;
        }
        for (int32_t m = NODE(x)->child; m >= 0; m = NODE(m)->next)
            if (!(NODE(m)->flags & F_DEL) && !key_in(D, m, IDENT_KEYS)) del(D, x, m);
        int32_t val = GET(x, value);
        if (val >= 0) {
            int32_t sys = GET(x, system);
            const char *sp = "", *vp;
            size_t sn = 0, vn;
            if (sys >= 0) cur(D, sys, &sp, &sn);
            cur(D, val, &vp, &vn);
            int acc = is_accession(D, x);
            /* the memo's key: the accession flag, the system, a NUL (in no JSON string here: those
               with escapes take the Python path), the value */
            D->scratch.n = 0;
            TRY(buf_ch(&D->scratch, acc ? 'A' : 'I'));
            TRY(buf_put(&D->scratch, sp, sn));
            TRY(buf_ch(&D->scratch, 0));
            TRY(buf_put(&D->scratch, vp, vn));
            const char *kp = D->scratch.p, *mp;
            size_t kn = D->scratch.n, mn;
            if (memo_find(&D->idents, kp, kn, &mp, &mn)) {
                TRY(set_value(D, val, mp, mn, 0));
            } else {
                PyObject *a = py_str(sp, sn), *b = a ? py_str(vp, vn) : NULL;
                PyObject *r = b ? PyObject_CallFunctionObjArgs(D->h_ident, a, b, acc ? Py_True : Py_False, NULL) : NULL;
                Py_XDECREF(a);
                Py_XDECREF(b);
                if (!r) return -1;
                Py_ssize_t rn;
                const char *rp = PyUnicode_Check(r) ? PyUnicode_AsUTF8AndSize(r, &rn) : NULL;
                int rc = rp ? set_value(D, val, rp, (size_t)rn, 0) : -1;
                if (!rp && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "hooks.ident_value returned a non-string");
                /* the hook ran no pass of its own on this document: the scratch key is still there */
                if (rc == 0) rc = memo_put(&D->idents, D->scratch.p, D->scratch.n, fnv(D->scratch.p, D->scratch.n), rp, (size_t)rn);
                Py_DECREF(r);
                TRY(rc);
            }
        }
        int32_t t = GET(x, type);
        if (t >= 0 && ctype(D, t) == J_OBJ) {
            int32_t tt = GET(t, text);
            if (tt >= 0) del(D, t, tt);
            int32_t c = GET(t, coding);
            if (!(only(D, t, CONCEPT_KEYS) && (c < 0 || NODE(c)->type == J_NULL || codings(D, c)))) TRY(walk(D, t));
        }
        int32_t per = GET(x, period);
        if (per >= 0 && ctype(D, per) == J_OBJ) TRY(walk(D, per));
        kept++;
    }
    if (!kept) del(D, parent, v);
    return 0;
}

/* deid.fhir_elements.strip_people on each contained resource, then the list walked as plain. */
static int contained(Doc *D, int32_t v) {
    static const char *const people[] = {"RelatedPerson", "Practitioner", "Person", "Patient", NULL};
    const uint64_t fields = B(name) | B(telecom) | B(photo) | B(contact) | B(address) | B(extension);
    for (int32_t x = NODE(v)->child; x >= 0; x = NODE(x)->next) {
        if ((NODE(x)->flags & F_DEL) || ctype(D, x) != J_OBJ) continue;
        int32_t rt = GET(x, resourceType);
        if (rt >= 0 && is_str(D, rt)) {
            const char *p;
            size_t n;
            cur(D, rt, &p, &n);
            for (const char *const *k = people; *k; k++) {
                if (n != strlen(*k) || memcmp(p, *k, n) != 0) continue;
                for (int32_t m = NODE(x)->child; m >= 0; m = NODE(m)->next)
                    if (key_in(D, m, fields)) del(D, x, m);
                if (n == 7) { /* Patient: a contained patient's birth date goes */
                    int32_t b = GET(x, birthDate);
                    if (b >= 0) del(D, x, b);
                }
            }
        }
        int32_t text = GET(x, text);
        if (text >= 0) del(D, x, text);
    }
    return walk_list(D, v, K_PLAIN);
}

/* hooks.subtree(code, ctx, raw JSON of the value) -> the value's new JSON, or None (removed) */
static int subtree(Doc *D, int32_t parent, int32_t m, int code) {
    Node *x = NODE(m);
    PyObject *raw = PyBytes_FromStringAndSize(D->d + x->start, (Py_ssize_t)x->len);
    if (!raw) return -1;
    PyObject *r = PyObject_CallFunction(D->h_subtree, "iOO", code, D->pyctx, raw);
    Py_DECREF(raw);
    if (!r) return -1;
    int rc = 0;
    if (r == Py_None) {
        del(D, parent, m);
    } else if (PyBytes_Check(r)) {
        rc = set_value(D, m, PyBytes_AS_STRING(r), (size_t)PyBytes_GET_SIZE(r), 1);
    } else {
        PyErr_SetString(PyExc_TypeError, "hooks.subtree returned neither bytes nor None");
        rc = -1;
    }
    Py_DECREF(r);
    return rc;
}

static int walk(Doc *D, int32_t node) {
    int32_t disp = GET(node, display);
    if (disp >= 0 && (HAS(node, reference) || (!HAS(node, code) && !HAS(node, system)))) del(D, node, disp);
    if (HAS(node, contentType)) {
        int32_t data = GET(node, data);
        if (data >= 0) {
            del(D, node, data);
            int32_t url = GET(node, url);
            if (url >= 0) del(D, node, url);
        }
    }
    for (int32_t m = NODE(node)->child; m >= 0; m = NODE(m)->next) {
        if (NODE(m)->flags & F_DEL) continue;
        int kind = kind_of(D, m);
        if (kind < 0) return -1;
        int t = ctype(D, m);
        if (kind == K_PLAIN || (kind == K_META && (t != J_OBJ || !only(D, m, META_KEYS)))) {
            if (t == J_STR) {
                const char *p;
                size_t n;
                cur(D, m, &p, &n);
                if (D->py_urls != Py_None && NODE(m)->kid == KID_reference && n >= 9 && memcmp(p, "urn:uuid:", 9) == 0) {
                    const char *vp;
                    size_t vn;
                    if (url_get(D, p, n, &vp, &vn)) {
                        TRY(set_value(D, m, vp, vn, 0));
                        cur(D, m, &p, &n);
                    }
                }
                if (HAS_PATIENT(p, n) || (D->shift && dashed(p, n, 1))) TRY(plain(D, m));
            } else if (t == J_OBJ) {
                int r = one_key_shapes(D, m);
                if (r < 0) return -1;
                if (r == 0) TRY(element(D, m));
            } else if (t == J_ARR) {
                TRY(walk_list(D, m, K_PLAIN));
            }
        } else if (kind == K_DATE) {
            if (t == J_STR) {
                TRY(string_kind(D, K_DATE, m));
            } else if (t == J_OBJ) {
                if (only(D, m, PERIOD_KEYS))
                    TRY(period(D, m));
                else
                    TRY(walk(D, m));
            } else if (t == J_ARR) {
                TRY(walk_list(D, m, K_DATE));
            }
        } else if (kind == K_META) {
            TRY(meta(D, m));
        } else if (kind == K_SKIP) {
            if (t == J_OBJ) {
                if (!is_coding(D, m)) TRY(walk(D, m));
            } else if (t == J_ARR) {
                if (!codings(D, m)) TRY(walk_list(D, m, K_PLAIN));
            } else if (t == J_STR) {
                const char *p;
                size_t n;
                cur(D, m, &p, &n);
                if (HAS_PATIENT(p, n)) TRY(patient_refs(D, m, p, n));
            }
        } else if (kind == K_IDENT) {
            if (identifiers_here(D, m))
                TRY(identifiers(D, node, m));
            else
                TRY(subtree(D, node, m, 0));
        } else if (kind == K_NOTE) {
            if (D->notes_clean && t == J_ARR)
                TRY(subtree(D, node, m, 1));
            else
                del(D, node, m);
        } else if (kind == K_DROP) {
            del(D, node, m);
        } else if (kind == K_CONTAINED && t == J_ARR) {
            TRY(contained(D, m));
        } else if (t == J_STR) {
            if (kind == K_TEXT && D->unchecked)
                del(D, node, m);
            else
                TRY(string_kind(D, kind, m));
        } else if (t == J_OBJ) {
            TRY(walk(D, m));
        } else if (t == J_ARR) {
            TRY(walk_list(D, m, kind));
        }
    }
    return 0;
}

static int walk_list(Doc *D, int32_t items, int kind) {
    for (int32_t x = NODE(items)->child; x >= 0; x = NODE(x)->next) {
        if (NODE(x)->flags & F_DEL) continue;
        int t = ctype(D, x);
        if (kind == K_PLAIN) {
            if (t == J_OBJ) {
                int r = one_key_shapes(D, x);
                if (r < 0) return -1;
                if (r == 0) TRY(element(D, x));
            } else if (t == J_STR) {
                const char *p;
                size_t n;
                cur(D, x, &p, &n);
                if (HAS_PATIENT(p, n) || (D->shift && dashed(p, n, 0))) TRY(plain(D, x));
            } else if (t == J_ARR) {
                TRY(walk_list(D, x, kind));
            }
            continue;
        }
        if (t == J_OBJ) {
            TRY(walk(D, x));
        } else if (t == J_STR) {
            if (kind == K_TEXT && D->unchecked)
                TRY(set_value(D, x, "", 0, 0));
            else
                TRY(string_kind(D, kind, x));
        } else if (t == J_ARR) {
            TRY(walk_list(D, x, kind));
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- writing (as orjson.dumps) */

/* The first byte of p[i..n) that JSON must escape (a quote, a backslash, a control byte), or n. */
static inline size_t plain_until(const char *p, size_t i, size_t n) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1F);
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        /* v <= 0x1F as unsigned bytes: max(v, 0x1F) == 0x1F (bytes beyond ASCII are written as they are) */
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
        int mask = _mm_movemask_epi8(hit);
        if (mask) return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == '"' || c == '\\') return i;
    }
    return n;
}

static int write_escaped(Buf *b, const char *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    TRY(buf_reserve(b, n + 2));
    b->p[b->n++] = '"';
    size_t run = 0;
    for (size_t i = plain_until(p, 0, n); i < n; i = plain_until(p, i + 1, n)) {
        unsigned char c = (unsigned char)p[i];
        TRY(buf_put(b, p + run, i - run));
        run = i + 1;
        char e[7] = {'\\', 0};
        size_t el = 2;
        switch (c) {
            case '"': e[1] = '"'; break;
            case '\\': e[1] = '\\'; break;
            case '\b': e[1] = 'b'; break;
            case '\f': e[1] = 'f'; break;
            case '\n': e[1] = 'n'; break;
            case '\r': e[1] = 'r'; break;
            case '\t': e[1] = 't'; break;
            default:
                e[1] = 'u';
                e[2] = '0';
                e[3] = '0';
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
                el = 6;
        }
        TRY(buf_put(b, e, el));
    }
    TRY(buf_put(b, p + run, n - run));
    return buf_ch(b, '"');
}

/* orjson's form of a finite double with 1e-5 <= |x| < 1e16: the shortest digits that read back as
   x (nearest first; CPython's repr finds the same digits), written as a plain decimal with at
   least one fraction digit. 0 outside that range (orjson writes an exponent there: asked). */
static int shortest_plain(double x, char *out, size_t *outn) {
    char *r = PyOS_double_to_string(x, 'r', 0, 0, NULL);
    if (!r) {
        PyErr_Clear();
        return 0;
    }
    const char *p = r;
    int neg = *p == '-';
    p += neg;
    char digits[24];
    size_t nd = 0;
    int point = -1; /* digits before the decimal point */
    for (; *p && *p != 'e' && nd < sizeof(digits); p++) {
        if (*p == '.')
            point = (int)nd;
        else
            digits[nd++] = *p;
    }
    if (point < 0) point = (int)nd;
    int exp10 = *p == 'e' ? atoi(p + 1) : 0;
    PyMem_Free(r);
    /* digits d1 d2 ... with the point after `point` digits, times 10^exp10: normalize to
       d1.d2... x 10^exp (leading zeros of 0.000123 dropped) */
    size_t lead = 0;
    while (lead < nd && digits[lead] == '0') lead++;
    if (lead == nd) return 0; /* zero: asked */
    int exp = point - 1 - (int)lead + exp10;
    memmove(digits, digits + lead, nd - lead);
    nd -= lead;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (exp >= 16 || exp < -5) return 0;
    size_t k = 0;
    if (neg) out[k++] = '-';
    if (exp >= 0) {
        for (int i = 0; i <= exp; i++) out[k++] = (size_t)i < nd ? digits[i] : '0';
        out[k++] = '.';
        if ((size_t)exp + 1 < nd) {
            for (size_t i = (size_t)exp + 1; i < nd; i++) out[k++] = digits[i];
        } else {
            out[k++] = '0';
        }
    } else {
        out[k++] = '0';
        out[k++] = '.';
        for (int i = 0; i < -exp - 1; i++) out[k++] = '0';
        for (size_t i = 0; i < nd; i++) out[k++] = digits[i];
    }
    *outn = k;
    return 1;
}

/* A number as orjson writes the value it reads: verbatim where that is certain, else asked. */
static int write_number(Doc *D, Buf *b, Node *x) {
    const char *p = D->d + x->start;
    size_t n = x->len;
    int neg = p[0] == '-';
    const char *q = p + neg;
    size_t qn = n - (size_t)neg;
    if (x->flags & F_INT) {
        if (qn <= 18 && !(neg && qn == 1 && q[0] == '0')) return buf_put(b, p, n);
    } else if (!memchr(p, 'e', n) && !memchr(p, 'E', n) && memchr(q, '.', qn)) {
        const char *dot = memchr(q, '.', qn);
        size_t ilen = (size_t)(dot - q), flen = qn - ilen - 1;
        const char *f = dot + 1;
        while (flen > 1 && f[flen - 1] == '0') flen--; /* 1.50 -> 1.5, 1.00 -> 1.0 */
        int ok;
        if (ilen == 1 && q[0] == '0') {
            size_t z = 0;
            while (z < flen && f[z] == '0') z++;
            ok = z == flen || (z <= 4 && flen - z <= 15); /* zero, or 1e-5 <= |x| < 1 */
        } else {
            ok = ilen + (flen == 1 && f[0] == '0' ? 0 : flen) <= 15;
        }
        if (ok) {
            TRY(buf_put(b, p, (size_t)neg + ilen + 1));
            return buf_put(b, f, flen);
        }
    }
    if (!(x->flags & F_INT) && n < 64) {
        char tmp[64], out[48];
        size_t outn;
        memcpy(tmp, p, n);
        tmp[n] = 0;
        double v = strtod(tmp, NULL);
        if (v != 0 && isfinite(v) && shortest_plain(v, out, &outn)) return buf_put(b, out, outn);
    }
    PyObject *raw = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    if (!raw) return -1;
    PyObject *r = PyObject_CallOneArg(D->h_number, raw);
    Py_DECREF(raw);
    if (!r) return -1;
    int rc = PyBytes_Check(r) ? buf_put(b, PyBytes_AS_STRING(r), (size_t)PyBytes_GET_SIZE(r)) : -1;
    if (rc < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "hooks.number returned no bytes");
    Py_DECREF(r);
    return rc;
}

static int write_node(Doc *D, Buf *b, int32_t i) {
    Node *x = NODE(i);
    if (x->repl >= 0) {
        Repl *r = &D->repls[x->repl];
        if (r->json) return buf_put(b, D->arena.p + r->off, r->len);
        return write_escaped(b, D->arena.p + r->off, r->len);
    }
    switch (x->type) {
        case J_STR:
        case J_TRUE:
        case J_FALSE:
        case J_NULL:
            return buf_put(b, D->d + x->start, x->len);
        case J_NUM:
            return write_number(D, b, x);
        default: {
            int obj = x->type == J_OBJ;
            TRY(buf_ch(b, obj ? '{' : '['));
            int first = 1;
            for (int32_t m = x->child; m >= 0; m = NODE(m)->next) {
                if (NODE(m)->flags & F_DEL) continue;
                if (!first) TRY(buf_ch(b, ','));
                first = 0;
                if (obj) {
                    TRY(buf_reserve(b, NODE(m)->klen + 3));
                    b->p[b->n++] = '"';
                    memcpy(b->p + b->n, D->d + NODE(m)->kstart, NODE(m)->klen);
                    b->n += NODE(m)->klen;
                    b->p[b->n++] = '"';
                    b->p[b->n++] = ':';
                }
                TRY(write_node(D, b, m));
            }
            return buf_ch(b, obj ? '}' : ']');
        }
    }
}

/* ---------------------------------------------------------------- one resource */

static int plain_string(Doc *D, int32_t s) { return s >= 0 && NODE(s)->type == J_STR && !(NODE(s)->flags & F_ESC); }

/* A character of a FHIR id: [A-Za-z0-9\-.] */
static inline int id_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || dig(c) || c == '-' || c == '.';
}

/* check_resource, for what this pass takes: a resourceType name and a FHIR id. */
static int acceptable(Doc *D, int32_t res, int32_t *rtype, int32_t *rid) {
    *rtype = GET(res, resourceType);
    *rid = GET(res, id);
    if (!plain_string(D, *rtype) || !plain_string(D, *rid)) return 0;
    const char *p = D->d + NODE(*rtype)->start + 1;
    size_t n = NODE(*rtype)->len - 2;
    if (n < 2 || n > 64 || !(p[0] >= 'A' && p[0] <= 'Z')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z'))) return 0;
    p = D->d + NODE(*rid)->start + 1;
    n = NODE(*rid)->len - 2;
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char(p[i])) return 0; /* "-" and "." alone pass the reader's check too */
    return 1;
}

static const uint8_t PATIENT_KEYS[] = {KID_subject, KID_patient, KID_beneficiary, KID_individual, KID_for,
                                      KID_focus,   KID_target,  KID_member};

/* PATIENT_REF.search(target).group(1): (?<![A-Za-z0-9])Patient/([A-Za-z0-9\-.]{1,64}) */
static int patient_local(const char *p, size_t n, const char **lp, size_t *ln) {
    for (size_t i = 0; i + 8 <= n; i++) {
        if (memcmp(p + i, "Patient/", 8) != 0) continue;
        if (i > 0) {
            char c = p[i - 1];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || dig(c)) continue;
        }
        size_t j = i + 8, k = 0;
        while (j + k < n && k < 64 && id_char(p[j + k])) k++;
        if (k) {
            *lp = p + j;
            *ln = k;
            return 1;
        }
    }
    return 0;
}

/* _patient_of: the local id of the patient a (non-Patient) resource is about; 0 where none. */
static int patient_of(Doc *D, int32_t res, const char **lp, size_t *ln) {
    for (size_t k = 0; k < sizeof(PATIENT_KEYS); k++) {
        int32_t values = get_id(D, res, PATIENT_KEYS[k]);
        if (values < 0 || NODE(values)->type == J_NULL) continue;
        int list = NODE(values)->type == J_ARR;
        for (int32_t ref = list ? NODE(values)->child : values; ref >= 0; ref = list ? NODE(ref)->next : -1) {
            if (NODE(ref)->type != J_OBJ) continue;
            int32_t target = GET(ref, reference);
            if (target < 0 || NODE(target)->type != J_STR) {
                int32_t entity = GET(ref, entity);
                if (entity >= 0 && NODE(entity)->type == J_OBJ) target = GET(entity, reference);
            }
            if (target < 0 || NODE(target)->type != J_STR) continue;
            const char *p;
            size_t n;
            cur(D, target, &p, &n);
            if (D->py_urls != Py_None && n >= 9 && memcmp(p, "urn:uuid:", 9) == 0) url_get(D, p, n, &p, &n);
            if (HAS_PATIENT(p, n) && patient_local(p, n, lp, ln)) return 1;
        }
    }
    return 0;
}

static void forget_contexts(Doc *D) {
    Py_CLEAR(D->last_ctx);
    Py_CLEAR(D->none_ctx);
    D->last_local_len = -1;
    D->none_valid = 0;
}

/* hooks.resource(local id or None, urls) -> (shift, unchecked, ctx), kept for the next resource of
   the same patient until a fallback (which may add a Patient to the index) runs. */
static int resource_context(Doc *D, const char *lp, size_t ln) {
    if (lp && (Py_ssize_t)ln == D->last_local_len && memcmp(lp, D->last_local, ln) == 0) {
        D->shift = D->last_shift;
        D->unchecked = D->last_unchecked;
        D->pyctx = D->last_ctx;
        return 0;
    }
    if (!lp && D->none_valid) {
        D->shift = D->none_shift;
        D->unchecked = D->none_unchecked;
        D->pyctx = D->none_ctx;
        return 0;
    }
    PyObject *local = lp ? py_str(lp, ln) : (Py_INCREF(Py_None), Py_None);
    if (!local) return -1;
    PyObject *r = PyObject_CallFunctionObjArgs(D->h_resource, local, D->py_urls, NULL);
    Py_DECREF(local);
    if (!r) return -1;
    long shift;
    int unchecked;
    PyObject *ctx;
    if (!PyArg_ParseTuple(r, "lpO", &shift, &unchecked, &ctx)) {
        Py_DECREF(r);
        return -1;
    }
    Py_INCREF(ctx);
    Py_DECREF(r);
    if (lp && ln < sizeof(D->last_local)) {
        Py_XSETREF(D->last_ctx, ctx);
        memcpy(D->last_local, lp, ln);
        D->last_local_len = (Py_ssize_t)ln;
        D->last_shift = shift;
        D->last_unchecked = unchecked;
    } else if (!lp) {
        Py_XSETREF(D->none_ctx, ctx);
        D->none_valid = 1;
        D->none_shift = shift;
        D->none_unchecked = unchecked;
    } else {
        /* a long local id: not kept */
        Py_XSETREF(D->last_ctx, ctx);
        D->last_local_len = -1;
    }
    D->shift = shift;
    D->unchecked = unchecked;
    D->pyctx = ctx;
    return 0;
}

/* The context of the resource about to be walked: the text memo serves one context at a time. */
static void use_context(Doc *D) {
    if (D->pyctx != D->texts_ctx) {
        memo_clear(&D->texts);
        Py_INCREF(D->pyctx);
        Py_XSETREF(D->texts_ctx, D->pyctx);
    }
}

static PyObject *current_str(Doc *D, int32_t s) {
    const char *p;
    size_t n;
    cur(D, s, &p, &n);
    return py_str(p, n);
}

/* current_str, reusing the previous row's string where the value is the same (a resource type,
   a patient reference: they repeat row after row). Returns a new reference. */
static PyObject *same_str(Doc *D, PyObject **last, int32_t s) {
    const char *p;
    size_t n;
    cur(D, s, &p, &n);
    if (*last) {
        Py_ssize_t ln;
        const char *lp = PyUnicode_AsUTF8AndSize(*last, &ln);
        if (lp && (size_t)ln == n && memcmp(lp, p, n) == 0) {
            Py_INCREF(*last);
            return *last;
        }
    }
    PyObject *v = py_str(p, n);
    if (!v) return NULL;
    Py_INCREF(v);
    Py_XSETREF(*last, v);
    return v;
}

/* The SHA-256 digest of a row's JSON (32 bytes), the lake's content hash of the row, computed
   here where the JSON was just written (no hashlib object per row); None where the pass was built
   without OpenSSL's headers: the lake then hashes the JSON itself. */
#ifdef MEDHUB_OPENSSL
static EVP_MD *sha256_md;   /* fetched once (an implicit fetch per digest costs more than a short row's hash) */
static EVP_MD_CTX *sha256_ctx; /* reused: rows are hashed one at a time, under the GIL */

static PyObject *row_digest(const char *p, size_t n) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    if (!sha256_md && !(sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL))) goto fail;
    if (!sha256_ctx && !(sha256_ctx = EVP_MD_CTX_new())) goto fail;
    if (EVP_DigestInit_ex(sha256_ctx, sha256_md, NULL) != 1 || EVP_DigestUpdate(sha256_ctx, p, n) != 1 ||
        EVP_DigestFinal_ex(sha256_ctx, md, &mdn) != 1 || mdn != 32)
        goto fail;
    return PyBytes_FromStringAndSize((const char *)md, 32);
fail:
    PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed in the FHIR Bundle pass");
    return NULL;
}
#else
static PyObject *row_digest(const char *p, size_t n) {
    (void)p;
    (void)n;
    Py_RETURN_NONE;
}
#endif

/* The row of a handled resource: (resourceType, id, JSON, patient reference, lastUpdated, the
   JSON's SHA-256 digest or None: see row_digest);
   NULL with D->declined where the Python path must take it, NULL with an exception on failure. */
static PyObject *native_resource(Doc *D, int32_t res, int32_t rtype, int32_t rid) {
    static const char *const people[] = {"RelatedPerson", "Practitioner", "Person", NULL};
    const uint64_t person_fields = B(name) | B(telecom) | B(photo) | B(contact) | B(address);
    const char *lp = NULL;
    size_t ln = 0;
    D->declined = 0;
    D->arena.n = 0;
    D->nrepl = 0;
    D->out.n = 0;
    if ((NODE(res)->sflags & F_ESC) && decode_strings(D, res) < 0) return NULL;
    if (!patient_of(D, res, &lp, &ln)) lp = NULL;
    if (resource_context(D, lp, ln) < 0) return NULL;
    use_context(D);
    int32_t text = GET(res, text);
    if (text >= 0) del(D, res, text);
    const char *tp = D->d + NODE(rtype)->start + 1;
    size_t tn = NODE(rtype)->len - 2;
    for (const char *const *k = people; *k; k++) {
        if (tn == strlen(*k) && memcmp(tp, *k, tn) == 0) {
            for (int32_t m = NODE(res)->child; m >= 0; m = NODE(m)->next)
                if (key_in(D, m, person_fields)) del(D, res, m);
        }
    }
    if (walk(D, res) < 0) return NULL;
    if (write_node(D, &D->out, res) < 0) return NULL;
    /* the key columns, read off the walked resource as lake.fhir_rows does */
    rtype = GET(res, resourceType);
    rid = GET(res, id);
    if (rtype < 0 || rid < 0 || !is_str(D, rtype) || !is_str(D, rid)) {
        D->declined = 1;
        return NULL;
    }
    PyObject *pref = NULL, *last = NULL;
    for (int k = 0; k < 3; k++) {
        int32_t v = get_id(D, res, PATIENT_KEYS[k]); /* subject, patient, beneficiary */
        if (v < 0 || ctype(D, v) != J_OBJ) continue;
        int32_t ref = GET(v, reference);
        if (ref >= 0 && is_str(D, ref)) {
            const char *p;
            size_t n;
            cur(D, ref, &p, &n);
            if (n >= 8 && memcmp(p, "Patient/", 8) == 0) {
                pref = same_str(D, &D->last_pref, ref);
                if (!pref) return NULL;
                break;
            }
        }
    }
    int32_t m = GET(res, meta);
    if (m >= 0 && ctype(D, m) == J_OBJ) {
        int32_t lu = GET(m, lastUpdated);
        if (lu >= 0 && is_str(D, lu)) {
            last = current_str(D, lu);
            if (!last) {
                Py_XDECREF(pref);
                return NULL;
            }
        }
    }
    PyObject *t = same_str(D, &D->last_type, rtype), *i = t ? current_str(D, rid) : NULL;
    PyObject *json = i ? PyBytes_FromStringAndSize(D->out.p, (Py_ssize_t)D->out.n) : NULL;
    PyObject *digest = json ? row_digest(D->out.p, D->out.n) : NULL;
    PyObject *row = NULL;
    if (digest) row = PyTuple_Pack(6, t, i, json, pref ? pref : Py_None, last ? last : Py_None, digest);
    Py_XDECREF(t);
    Py_XDECREF(i);
    Py_XDECREF(json);
    Py_XDECREF(digest);
    Py_XDECREF(pref);
    Py_XDECREF(last);
    return row;
}

/* ---------------------------------------------------------------- the document */

/* The node array and buffers of the last document, kept for the next one (a Bundle after a
   Bundle needs about as much): no fresh pages to fault in per document. Too large ones go. */
static struct {
    int busy;
    Node *nodes;
    int32_t cap;
    Buf arena, out;
    Repl *repls;
    int32_t repl_cap;
} workspace;

#define KEEP_NODES (1 << 20)
#define KEEP_BYTES (16u << 20)

static void workspace_take(Doc *D) {
    if (workspace.busy) return; /* a document inside a hook: buffers of its own */
    workspace.busy = 1;
    D->nodes = workspace.nodes;
    D->cap = workspace.cap;
    D->arena = workspace.arena;
    D->out = workspace.out;
    D->repls = workspace.repls;
    D->repl_cap = workspace.repl_cap;
    D->arena.n = D->out.n = 0;
    memset(&workspace, 0, sizeof(workspace));
    workspace.busy = 1;
}

static void keep_buf(Buf *keep, Buf *b) {
    if (b->cap <= KEEP_BYTES) {
        *keep = *b;
    } else {
        PyMem_Free(b->p);
    }
    b->p = NULL;
}

static void workspace_give_back(Doc *D, int took) {
    if (!took) {
        PyMem_Free(D->nodes);
        PyMem_Free(D->arena.p);
        PyMem_Free(D->out.p);
        PyMem_Free(D->repls);
        return;
    }
    if (D->cap <= KEEP_NODES) {
        workspace.nodes = D->nodes;
        workspace.cap = D->cap;
    } else {
        PyMem_Free(D->nodes);
    }
    keep_buf(&workspace.arena, &D->arena);
    keep_buf(&workspace.out, &D->out);
    workspace.repls = D->repls;
    workspace.repl_cap = D->repl_cap;
    workspace.busy = 0;
}

static void doc_free(Doc *D) {
    workspace_give_back(D, D->took_workspace);
    PyMem_Free(D->urls.slots);
    PyMem_Free(D->urls.arena.p);
    PyMem_Free(D->scratch.p);
    PyMem_Free(D->texts.slots);
    PyMem_Free(D->texts.arena.p);
    PyMem_Free(D->prefs.slots);
    PyMem_Free(D->prefs.arena.p);
    PyMem_Free(D->idents.slots);
    PyMem_Free(D->idents.arena.p);
    Py_XDECREF(D->texts_ctx);
    Py_XDECREF(D->last_type);
    Py_XDECREF(D->last_pref);
    Py_XDECREF(D->h_ident);
    Py_XDECREF(D->py_urls);
    forget_contexts(D);
    Py_XDECREF(D->h_kind);
    Py_XDECREF(D->h_resource);
    Py_XDECREF(D->h_text);
    Py_XDECREF(D->h_prefs);
    Py_XDECREF(D->h_uid);
    Py_XDECREF(D->h_subtree);
    Py_XDECREF(D->h_number);
    Py_XDECREF(D->h_fallback);
}

static int str_eq(Doc *D, int32_t s, const char *lit) {
    size_t l = strlen(lit);
    return s >= 0 && NODE(s)->type == J_STR && NODE(s)->len == l + 2 && memcmp(D->d + NODE(s)->start + 1, lit, l) == 0;
}

/* The fullUrl map, as ingest.fhir builds it. 0: built; 1: the Python path must judge; -1: error. */
static int build_urls(Doc *D, int32_t entries) {
    for (int32_t e = NODE(entries)->child; e >= 0; e = NODE(e)->next) {
        if (NODE(e)->type != J_OBJ) continue;
        if (NODE(e)->flags & F_DUP) return 1;
        for (int32_t m = NODE(e)->child; m >= 0; m = NODE(m)->next)
            if (NODE(m)->kflags & F_ESC) return 1;
        int32_t res = GET(e, resource), full = GET(e, fullUrl);
        if (res < 0 || NODE(res)->type != J_OBJ || full < 0 || NODE(full)->type != J_STR) continue;
        if (NODE(full)->flags & F_ESC) return 1;
        const char *fp = D->d + NODE(full)->start + 1;
        size_t fn = NODE(full)->len - 2;
        if (fn < 9 || memcmp(fp, "urn:uuid:", 9) != 0) continue;
        if (NODE(res)->flags & F_DUP) return 1;
        int32_t rid = GET(res, id), rtype = GET(res, resourceType);
        /* an entry whose id the reader would assign, or an id that is not a plain string */
        if (!plain_string(D, rid) || NODE(rid)->len == 2) return 1;
        if (rtype < 0 || NODE(rtype)->type != J_STR) continue;
        if (NODE(rtype)->flags & F_ESC) return 1;
        if (url_put(D, fp, fn, D->d + NODE(rtype)->start + 1, NODE(rtype)->len - 2, D->d + NODE(rid)->start + 1,
                    NODE(rid)->len - 2) < 0)
            return -1;
    }
    if (!D->urls.used) {
        Py_INCREF(Py_None);
        D->py_urls = Py_None;
        return 0;
    }
    D->py_urls = PyDict_New();
    if (!D->py_urls) return -1;
    for (size_t j = 0; j < D->urls.cap; j++) {
        MemoSlot *s = &D->urls.slots[j];
        if (!s->used) continue;
        const char *a = D->urls.arena.p;
        PyObject *k = py_str(a + s->koff, s->klen), *v = k ? py_str(a + s->voff, s->vlen) : NULL;
        int rc = v ? PyDict_SetItem(D->py_urls, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (rc < 0) return -1;
    }
    return 0;
}

static PyObject *fallback(Doc *D, Py_ssize_t index, int32_t e) {
    forget_contexts(D);
    PyObject *raw = PyBytes_FromStringAndSize(D->d + NODE(e)->start, (Py_ssize_t)NODE(e)->len);
    if (!raw) return NULL;
    PyObject *r = PyObject_CallFunction(D->h_fallback, "nOO", index, raw, D->py_urls);
    Py_DECREF(raw);
    return r;
}

static PyObject *deid_bundle(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *hooks;
    if (!PyArg_ParseTuple(args, "y*O", &view, &hooks)) return NULL;
    Doc doc;
    memset(&doc, 0, sizeof(doc));
    Doc *D = &doc;
    D->last_local_len = -1;
    D->texts.bounded = D->prefs.bounded = D->idents.bounded = 1; /* caches; the fullUrl map keeps every entry */
    D->took_workspace = !workspace.busy;
    workspace_take(D);
    PyObject *results = NULL;
    const char *d = view.buf;
    size_t size = (size_t)view.len;
    if (size >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0) {
        d += 3;
        size -= 3;
    }
    if (size > 0xF0000000u) goto decline;
    D->d = d;
    D->size = size;
#define HOOK(field, name)                                       \
    if (!(D->field = PyObject_GetAttrString(hooks, name))) goto error;
    HOOK(h_kind, "kind");
    HOOK(h_resource, "resource");
    HOOK(h_text, "text");
    HOOK(h_prefs, "patient_refs");
    HOOK(h_uid, "uid");
    HOOK(h_subtree, "subtree");
    HOOK(h_number, "number");
    HOOK(h_fallback, "fallback");
    HOOK(h_ident, "ident_value");
#undef HOOK
    {
        PyObject *nc = PyObject_GetAttrString(hooks, "notes_clean");
        if (!nc) goto error;
        D->notes_clean = PyObject_IsTrue(nc);
        Py_DECREF(nc);
        if (D->notes_clean < 0) goto error;
    }
    size_t pos = 0;
    int32_t root = parse_value(D, &pos, 0);
    if (root < 0) {
        if (PyErr_Occurred()) goto error;
        goto decline;
    }
    if (skip_ws(d, pos, size) != size) goto decline;
    if (NODE(root)->type != J_OBJ || (NODE(root)->flags & F_DUP)) goto decline;
    for (int32_t m = NODE(root)->child; m >= 0; m = NODE(m)->next)
        if (NODE(m)->kflags & F_ESC) goto decline;
    if (!str_eq(D, GET(root, resourceType), "Bundle")) goto decline;
    int32_t entries = GET(root, entry);
    if (entries < 0 || NODE(entries)->type != J_ARR || NODE(entries)->count == 0) goto decline;
    int u = build_urls(D, entries);
    if (u < 0) goto error;
    if (u > 0) goto decline;
    results = PyList_New(0);
    if (!results) goto error;
    Py_ssize_t index = 0;
    for (int32_t e = NODE(entries)->child; e >= 0; e = NODE(e)->next, index++) {
        PyObject *item = NULL;
        int32_t res = NODE(e)->type == J_OBJ ? GET(e, resource) : -1;
        int32_t rtype, rid;
        int native = res >= 0 && NODE(res)->type == J_OBJ && !(NODE(res)->sflags & (F_KESC | F_DUP)) &&
                     !(NODE(res)->flags & F_DUP) && acceptable(D, res, &rtype, &rid) &&
                     !str_eq(D, rtype, "Patient");
        if (native) {
            item = native_resource(D, res, rtype, rid);
            if (!item) {
                if (PyErr_Occurred()) {
                    if (!PyErr_ExceptionMatches(PyExc_Exception)) goto error; /* KeyboardInterrupt, MemoryError */
                    PyErr_Clear(); /* the Python path meets the same failure and quarantines the item */
                }
                native = 0; /* the Python path reads the entry as sent, not these nodes */
            }
        }
        int rc;
        if (!native) {
            item = fallback(D, index, e);
            if (!item) goto error;
            /* the outcomes of the Python path for this entry, in place */
            rc = PyList_SetSlice(results, PyList_GET_SIZE(results), PyList_GET_SIZE(results), item);
        } else {
            rc = PyList_Append(results, item);
        }
        Py_DECREF(item);
        if (rc < 0) goto error;
    }
    doc_free(D);
    PyBuffer_Release(&view);
    return results;
decline:
    doc_free(D);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
error:
    Py_XDECREF(results);
    doc_free(D);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"deid_bundle", deid_bundle, METH_VARARGS,
     "deid_bundle(data, hooks) -> outcomes | None: a Bundle's entries de-identified natively "
     "(a row tuple each) or by hooks.fallback (the outcomes it returns, in place); None where the whole document is "
     "left to the Python path."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fhir_bundle",
                                    "The FHIR gate's native pass over one Bundle (see the C source).", -1, methods, NULL, NULL, NULL, NULL};

#ifndef SOURCE_SHA256
#define SOURCE_SHA256 ""
#endif

PyMODINIT_FUNC PyInit__fhir_bundle(void) {
    init_key_ids();
    PyObject *m = PyModule_Create(&module);
#ifdef MEDHUB_OPENSSL
    const int row_digests = 1;
#else
    const int row_digests = 0;
#endif
    if (m && (PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0 ||
              PyModule_AddIntConstant(m, "ROW_DIGESTS", row_digests) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
