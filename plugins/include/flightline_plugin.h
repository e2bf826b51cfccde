/*
 * flightline_plugin.h — the Flightline plugin ABI.
 *
 * A Flightline plugin is a shared library (.so / .dylib / .dll) that exports one C function,
 * `flightline_plugin_init`. The host (the `flightline` runner, or any program using
 * `flightline_core::plugin`) calls it with the newest ABI version it speaks; the plugin fills a
 * table of function pointers for that version, or answers FLIGHTLINE_STATUS_NOT_IMPLEMENTED and
 * the host retries with the next older version. Batches and schemas cross as the Arrow C Data
 * Interface (struct ArrowArray / struct ArrowSchema), zero-copy, so a plugin may be written in any
 * language that speaks it (C, C++, Zig, Go, Rust).
 *
 * The model is ADBC's driver entry point (`AdbcDriverInit`): one entry symbol, version
 * negotiation, a table that only grows at its end.
 *
 * Compatibility rules
 *  - Fields are only ever appended to the structs below; each new field carries a `since` note.
 *    A plugin built against an older header fills a shorter table and keeps loading.
 *  - Every struct the host passes in starts with `size` (its size in bytes): a plugin must not read
 *    a field that lies beyond `size`.
 *
 * Threading
 *  - `flightline_plugin_init` and `create` may be called from any thread, concurrently.
 *  - The host makes at most ONE call at a time on a given instance, but successive calls on the
 *    same instance may come from different threads: keep no per-instance state in thread-locals.
 *  - Host callbacks may be called from inside any plugin call, on the calling thread.
 *
 * Lifetime
 *  - The host never unloads a plugin library (dlclose): a library stays mapped until the process
 *    exits, so static strings and functions stay valid.
 *
 * Ownership, per pointer, is stated on each field: "in" (the host owns it; valid for the call
 * only unless stated otherwise), "out" (the plugin hands it to the host, with its release rule).
 */
#ifndef FLIGHTLINE_PLUGIN_H
#define FLIGHTLINE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Arrow C Data Interface (https://arrow.apache.org/docs/format/CDataInterface.html), verbatim.
 * ------------------------------------------------------------------------------------------- */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

/* ---------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------- */

/** ABI version 1: the table below up to and including `destroy`. */
#define FLIGHTLINE_PLUGIN_ABI_1 1u

/** sizeof(struct FlightlinePluginTable) as of ABI version 1 (on this platform). */
#define FLIGHTLINE_PLUGIN_TABLE_SIZE_1 (offsetof(struct FlightlinePluginTable, destroy) + sizeof(void*))

/**
 * ABI version 2: the table up to and including `commit`. A run now commits in two phases:
 * `finish` prepares (writes, flushes, syncs; publishes nothing), `commit` publishes, and is
 * called only once every processor of the run has finished. A host that speaks only version 1
 * never calls `commit`: a plugin that accepts version 1 must publish in `finish` there.
 */
#define FLIGHTLINE_PLUGIN_ABI_2 2u

/** sizeof(struct FlightlinePluginTable) as of ABI version 2 (on this platform). */
#define FLIGHTLINE_PLUGIN_TABLE_SIZE_2 (offsetof(struct FlightlinePluginTable, commit) + sizeof(void*))

/* ---------------------------------------------------------------------------------------------
 * Status codes: every function that can fail returns one of these.
 * ------------------------------------------------------------------------------------------- */

typedef int32_t FlightlineStatus;

/** Success. */
#define FLIGHTLINE_STATUS_OK 0
/** Failure with no better code. `error` says what failed. */
#define FLIGHTLINE_STATUS_UNKNOWN 1
/** init: this ABI version is not spoken (the host retries an older one); any other function:
 *  the operation is not supported by this plugin (e.g. `validate` on a processor-only plugin). */
#define FLIGHTLINE_STATUS_NOT_IMPLEMENTED 2
/** The input is refused: bad options JSON at `create`, a schema the plugin cannot handle at
 *  `open`. `error` says which input and why. */
#define FLIGHTLINE_STATUS_INVALID_ARGUMENT 3
/** The work failed (a batch could not be processed, a report could not be written). */
#define FLIGHTLINE_STATUS_INTERNAL 4
/** The plugin panicked / crashed in a recoverable way (e.g. a caught Rust panic). The instance is
 *  poisoned: every further call on it returns FLIGHTLINE_STATUS_PANICKED; only `destroy` is valid. */
#define FLIGHTLINE_STATUS_PANICKED 5

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

/**
 * A detailed error, filled by the plugin when a call fails.
 *
 * The host zero-initialises it before each call. On failure the plugin MAY set `message` (out:
 * NUL-terminated UTF-8, allocated by the plugin) and then MUST set `release`. The host copies the
 * message and calls `release(error)` exactly once; `release` frees `message` (and
 * `private_data`) and sets every field to NULL. A plugin must not set a message on success.
 */
struct FlightlineError {
  char* message;
  void (*release)(struct FlightlineError* error);
  void* private_data;
};

/* ---------------------------------------------------------------------------------------------
 * Host callbacks (logs and metrics). A shared library has its own copy of every static (a Rust
 * plugin has its own tracing subscriber and metrics recorder, which nobody installs), so a plugin
 * sends its log lines and metric samples through these.
 * ------------------------------------------------------------------------------------------- */

/** Log levels for `FlightlineHost.log`, most severe first. */
#define FLIGHTLINE_LOG_ERROR 1
#define FLIGHTLINE_LOG_WARN 2
#define FLIGHTLINE_LOG_INFO 3
#define FLIGHTLINE_LOG_DEBUG 4
#define FLIGHTLINE_LOG_TRACE 5

/** Metric kinds for `FlightlineHost.metric`. */
#define FLIGHTLINE_METRIC_COUNTER 1   /* add `value` (>= 0, rounded down) to a counter */
#define FLIGHTLINE_METRIC_GAUGE 2     /* set a gauge to `value` */
#define FLIGHTLINE_METRIC_HISTOGRAM 3 /* record one sample `value` */

/** One metric label. Both strings are in, NUL-terminated UTF-8, valid for the call only. */
struct FlightlineLabel {
  const char* key;
  const char* value;
};

/**
 * The host's callbacks, passed to `create`.
 *
 * In: the struct and `host_data` are owned by the host and stay valid until `destroy` returns for
 * the instance created with them; the plugin may keep the pointer. Strings passed to a callback
 * are in: the host copies what it keeps. Callbacks never fail and never call back into the plugin.
 * The host adds the labels `plugin` (the table's name) and `job` to every metric.
 */
struct FlightlineHost {
  /** sizeof(struct FlightlineHost) as the host knows it. Since 1. */
  uint32_t size;
  /** Opaque; pass it back as the first argument of each callback. Since 1. */
  void* host_data;
  /** A log line: `level` is a FLIGHTLINE_LOG_* value, `message` NUL-terminated UTF-8. Since 1. */
  void (*log)(void* host_data, int32_t level, const char* message);
  /** A metric sample: `kind` is a FLIGHTLINE_METRIC_* value, `name` a Prometheus metric name,
   *  `labels` an array of `n_labels` labels (may be NULL when 0). Since 1. */
  void (*metric)(void* host_data, int32_t kind, const char* name,
                 const struct FlightlineLabel* labels, size_t n_labels, double value);
};

/* ---------------------------------------------------------------------------------------------
 * The call context: what the host knows about the current call.
 * ------------------------------------------------------------------------------------------- */

/**
 * In, valid for the call only; the plugin copies what it keeps.
 */
struct FlightlineContext {
  /** sizeof(struct FlightlineContext) as the host knows it. Since 1. */
  uint32_t size;
  /** 1 when window_begin_ns/window_end_ns hold the run's time window [begin, end). Since 1. */
  uint32_t has_window;
  /** The job name, NUL-terminated UTF-8 ("" outside the runner). Since 1. */
  const char* job;
  /** process: 0-based index of this batch; open/finish: the number of batches so far. Since 1. */
  uint64_t batch_index;
  /** Rows delivered before this batch. Since 1. */
  uint64_t rows_before;
  /** Rows the query will return, or -1 when unknown. Since 1. */
  int64_t estimate_rows;
  /** The window, in nanoseconds since the Unix epoch, UTC. Since 1. */
  int64_t window_begin_ns;
  int64_t window_end_ns;
};

/* ---------------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------------- */

/** Bits of `FlightlinePluginTable.kind`. */
#define FLIGHTLINE_KIND_PROCESSOR 1u /* open/process/finish are implemented */
#define FLIGHTLINE_KIND_VALIDATOR 2u /* validate is implemented */

/**
 * Filled by `flightline_plugin_init`. The host zero-initialises the whole struct (as large as
 * the newest version it speaks) before the call; the plugin writes only the fields of the
 * version it accepted and sets `size` to that version's size.
 *
 * Every `const char*` out of the table (name, version) is static: owned by the plugin, valid as
 * long as the library is loaded (forever).
 * Every function returning a FlightlineStatus takes a `struct FlightlineError* error` (in, never
 * NULL, zero-initialised by the host) that the plugin fills on failure (see FlightlineError).
 */
struct FlightlinePluginTable {
  /** Bytes of this struct the plugin filled: FLIGHTLINE_PLUGIN_TABLE_SIZE_<version>. Since 1. */
  uint32_t size;
  /** FLIGHTLINE_KIND_* bits. Since 1. */
  uint32_t kind;
  /** The plugin's name (used in errors, metric labels, reports). Static. Since 1. */
  const char* name;
  /** The plugin's own version, e.g. "0.3.1". Static. Since 1. */
  const char* version;

  /**
   * Makes an instance. Since 1.
   * options_json: in, NUL-terminated UTF-8 JSON (an object, "{}" for none); valid for the call.
   * host: in, see FlightlineHost (valid until `destroy` of this instance).
   * instance: out, an opaque pointer the plugin owns; the host passes it back to every call and
   *   finally to `destroy`. Set only on FLIGHTLINE_STATUS_OK.
   * Refused options: FLIGHTLINE_STATUS_INVALID_ARGUMENT with a message naming the option.
   */
  FlightlineStatus (*create)(const char* options_json, const struct FlightlineHost* host,
                             void** instance, struct FlightlineError* error);

  /**
   * Called once, before the first batch, with the result schema. Since 1.
   * schema: in, borrowed for the call: the plugin must not release it (the host does); copy it
   *   (deep) to keep it.
   */
  FlightlineStatus (*open)(void* instance, const struct ArrowSchema* schema,
                           const struct FlightlineContext* context,
                           struct FlightlineError* error);

  /**
   * Called once per batch, in order. Since 1.
   * batch: in, a struct array (one child per column). The plugin MAY take ownership by moving it
   *   (copy the struct, then set batch->release = NULL) and release it whenever it likes, from any
   *   thread; otherwise the host releases it after the call returns and the plugin must not keep
   *   any pointer into it. Buffers are never copied: this is the host's memory.
   * schema: in, the struct type of `batch`, borrowed for the call (as in `open`).
   */
  FlightlineStatus (*process)(void* instance, struct ArrowArray* batch,
                              const struct ArrowSchema* schema,
                              const struct FlightlineContext* context,
                              struct FlightlineError* error);

  /**
   * Called once after the last batch when every batch succeeded. Since 1. Version 1: publishes
   * the output. Version 2: prepares it (everything that can fail happens here) and publishes
   * nothing; `commit` or `abort` follows.
   * report_json: out, NUL-terminated UTF-8 JSON object
   *   {"counts": {name: u64}, "tables": [{"title", "columns", "rows"}], "files": [path],
   *    "notes": [string]} (every key optional); allocated by the plugin, released by the host
   *   with `release_string`. Set only on FLIGHTLINE_STATUS_OK.
   */
  FlightlineStatus (*finish)(void* instance, const struct FlightlineContext* context,
                             char** report_json, struct FlightlineError* error);

  /**
   * Discard partial or prepared output. May be NULL (nothing to discard). Since 1.
   * Version 1: called instead of `finish` when the run failed or was cancelled; never after
   * `finish`. Version 2: called whenever the run does not commit: after a failed call on this
   * instance (including `finish`), on cancel, or after a successful `finish` when another
   * processor of the run failed. Never after `commit`, never twice.
   */
  void (*abort)(void* instance);

  /**
   * Checks a query before it runs (FLIGHTLINE_KIND_VALIDATOR). Since 1.
   * sql: in, NUL-terminated UTF-8, valid for the call.
   * schema: in, the query's result schema when the host knows it, else NULL; borrowed as in `open`.
   * findings_json: out, NUL-terminated UTF-8 JSON array of
   *   {"severity": "info"|"warn"|"deny", "code": str, "message": str, "recommendation": str}
   *   ("[]" for nothing to say); released by the host with `release_string`.
   */
  FlightlineStatus (*validate)(void* instance, const char* sql, const struct ArrowSchema* schema,
                               char** findings_json, struct FlightlineError* error);

  /** Frees a string the plugin returned through `finish` or `validate`. Since 1. */
  void (*release_string)(char* string);

  /**
   * The message of the last failed call on this instance, or NULL. Out: owned by the instance,
   * valid until the next call on it. For hosts that lost the FlightlineError. Since 1.
   */
  const char* (*last_error)(void* instance);

  /** Frees the instance. Called exactly once per instance, last. Since 1. */
  void (*destroy)(void* instance);

  /**
   * Publishes what `finish` prepared (a sink renames its file into place). Called at most once,
   * after `finish` returned OK on this instance and on every other processor of the run; then
   * only `destroy`. Keep it to steps that rarely fail: processors committed before this one
   * stay committed. May be NULL (the output is the report). Since 2.
   */
  FlightlineStatus (*commit)(void* instance, struct FlightlineError* error);
};

/**
 * The entry point: the one symbol every plugin exports.
 * version: in, the ABI version the host asks for (FLIGHTLINE_PLUGIN_ABI_*).
 * table: in/out, a struct FlightlinePluginTable* zero-initialised by the host.
 * Returns FLIGHTLINE_STATUS_OK after filling the table, or FLIGHTLINE_STATUS_NOT_IMPLEMENTED when
 * it does not speak `version` (the host then asks for an older one).
 */
FlightlineStatus flightline_plugin_init(uint32_t version, void* table,
                                        struct FlightlineError* error);

typedef FlightlineStatus (*FlightlinePluginInitFunc)(uint32_t version, void* table,
                                                     struct FlightlineError* error);

#ifdef __cplusplus
}
#endif

#endif /* FLIGHTLINE_PLUGIN_H */
