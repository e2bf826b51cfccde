/*
 * top_levels: a Flightline plugin written in C.
 *
 * Processor: counts the rows of each log level (an int32 column, `level` by default) and
 * reports them as counts {"rows": N, "level_1": n1, ...}.
 * Validator: with the option {"deny_table": "name"}, denies any query that mentions that table.
 *
 * Build:  cc -shared -fPIC -O2 -I plugins/include -o libtop_levels.so plugins/c/top_levels.c
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flightline_plugin.h"

#define MAX_LEVEL 16 /* levels 0..15 are counted one by one, the rest as "other" */

struct instance {
  const struct FlightlineHost* host;
  char deny_table[128]; /* empty: the validator says nothing */
  int64_t level_child;  /* index of the level column, from open; -1 before */
  uint64_t rows;
  uint64_t per_level[MAX_LEVEL + 1];
  char last_error[256];
};

/* ---- errors ----------------------------------------------------------------------------- */

static void release_error(struct FlightlineError* error) {
  free(error->message);
  error->message = NULL;
  error->release = NULL;
  error->private_data = NULL;
}

static FlightlineStatus fail(struct instance* self, struct FlightlineError* error,
                             FlightlineStatus status, const char* message) {
  if (self) snprintf(self->last_error, sizeof self->last_error, "%s", message);
  if (error) {
    error->message = strdup(message);
    error->release = release_error;
  }
  return status;
}

static void host_log(struct instance* self, int32_t level, const char* message) {
  if (self->host && self->host->size >= sizeof(struct FlightlineHost) && self->host->log)
    self->host->log(self->host->host_data, level, message);
}

static void host_counter(struct instance* self, const char* name, double value) {
  struct FlightlineLabel label = {"language", "c"};
  if (self->host && self->host->size >= sizeof(struct FlightlineHost) && self->host->metric)
    self->host->metric(self->host->host_data, FLIGHTLINE_METRIC_COUNTER, name, &label, 1, value);
}

/* ---- options: {} or {"deny_table": "identifier"} ------------------------------------------ */

static FlightlineStatus parse_options(struct instance* self, const char* json,
                                      struct FlightlineError* error) {
  const char* key = strstr(json, "\"deny_table\"");
  if (!key) return FLIGHTLINE_STATUS_OK;
  const char* quote = strchr(key + strlen("\"deny_table\""), '"');
  if (!quote) return fail(self, error, FLIGHTLINE_STATUS_INVALID_ARGUMENT,
                          "top_levels: option deny_table must be a string");
  size_t n = 0;
  for (const char* c = quote + 1; *c != '"'; c++, n++) {
    if (!*c || n + 1 >= sizeof self->deny_table || !(isalnum((unsigned char)*c) || *c == '_'))
      return fail(self, error, FLIGHTLINE_STATUS_INVALID_ARGUMENT,
                  "top_levels: option deny_table must be a table name (letters, digits, _)");
    self->deny_table[n] = *c;
  }
  self->deny_table[n] = '\0';
  return FLIGHTLINE_STATUS_OK;
}

/* ---- the table ---------------------------------------------------------------------------- */

static FlightlineStatus tl_create(const char* options_json, const struct FlightlineHost* host,
                                  void** instance, struct FlightlineError* error) {
  struct instance* self = calloc(1, sizeof *self);
  if (!self) return fail(NULL, error, FLIGHTLINE_STATUS_INTERNAL, "top_levels: out of memory");
  self->host = host;
  self->level_child = -1;
  FlightlineStatus status = parse_options(self, options_json ? options_json : "{}", error);
  if (status != FLIGHTLINE_STATUS_OK) {
    free(self);
    return status;
  }
  *instance = self;
  return FLIGHTLINE_STATUS_OK;
}

static FlightlineStatus tl_open(void* instance, const struct ArrowSchema* schema,
                                const struct FlightlineContext* context,
                                struct FlightlineError* error) {
  struct instance* self = instance;
  (void)context;
  for (int64_t i = 0; i < schema->n_children; i++) {
    const struct ArrowSchema* child = schema->children[i];
    if (child->name && strcmp(child->name, "level") == 0) {
      if (strcmp(child->format, "i") != 0)
        return fail(self, error, FLIGHTLINE_STATUS_INVALID_ARGUMENT,
                    "top_levels: column `level` must be int32");
      self->level_child = i;
      return FLIGHTLINE_STATUS_OK;
    }
  }
  return fail(self, error, FLIGHTLINE_STATUS_INVALID_ARGUMENT,
              "top_levels: the result has no column `level`");
}

/* Reads the batch in place and leaves it to the host to release (it is not moved). */
static FlightlineStatus tl_process(void* instance, struct ArrowArray* batch,
                                   const struct ArrowSchema* schema,
                                   const struct FlightlineContext* context,
                                   struct FlightlineError* error) {
  struct instance* self = instance;
  (void)schema;
  (void)context;
  if (self->level_child < 0 || self->level_child >= batch->n_children)
    return fail(self, error, FLIGHTLINE_STATUS_INVALID_ARGUMENT, "top_levels: open was not called");
  const struct ArrowArray* levels = batch->children[self->level_child];
  const uint8_t* validity = levels->buffers[0];
  const int32_t* values = levels->buffers[1];
  int64_t offset = batch->offset + levels->offset;
  for (int64_t i = 0; i < batch->length; i++) {
    int64_t at = offset + i;
    if (validity && !(validity[at / 8] & (1 << (at % 8)))) continue;
    int32_t level = values[at];
    self->per_level[(level >= 0 && level < MAX_LEVEL) ? level : MAX_LEVEL]++;
  }
  self->rows += (uint64_t)batch->length;
  host_counter(self, "top_levels_rows_total", (double)batch->length);
  return FLIGHTLINE_STATUS_OK;
}

static FlightlineStatus tl_finish(void* instance, const struct FlightlineContext* context,
                                  char** report_json, struct FlightlineError* error) {
  struct instance* self = instance;
  (void)context;
  size_t cap = 128 + (MAX_LEVEL + 1) * 48;
  char* out = malloc(cap);
  if (!out) return fail(self, error, FLIGHTLINE_STATUS_INTERNAL, "top_levels: out of memory");
  size_t n = (size_t)snprintf(out, cap, "{\"counts\":{\"rows\":%llu", (unsigned long long)self->rows);
  for (int level = 0; level <= MAX_LEVEL; level++) {
    if (!self->per_level[level]) continue;
    if (level == MAX_LEVEL)
      n += (size_t)snprintf(out + n, cap - n, ",\"level_other\":%llu",
                            (unsigned long long)self->per_level[level]);
    else
      n += (size_t)snprintf(out + n, cap - n, ",\"level_%d\":%llu", level,
                            (unsigned long long)self->per_level[level]);
  }
  snprintf(out + n, cap - n, "}}");
  char line[96];
  snprintf(line, sizeof line, "top_levels: %llu rows counted", (unsigned long long)self->rows);
  host_log(self, FLIGHTLINE_LOG_INFO, line);
  *report_json = out;
  return FLIGHTLINE_STATUS_OK;
}

static int mentions(const char* sql, const char* word) {
  size_t n = strlen(word);
  for (const char* s = sql; *s; s++) {
    if (strncasecmp(s, word, n) != 0) continue;
    int before = s == sql || !(isalnum((unsigned char)s[-1]) || s[-1] == '_');
    int after = !(isalnum((unsigned char)s[n]) || s[n] == '_');
    if (before && after) return 1;
  }
  return 0;
}

static FlightlineStatus tl_validate(void* instance, const char* sql,
                                    const struct ArrowSchema* schema, char** findings_json,
                                    struct FlightlineError* error) {
  struct instance* self = instance;
  (void)schema;
  (void)error;
  if (!self->deny_table[0] || !mentions(sql, self->deny_table)) {
    *findings_json = strdup("[]");
    return FLIGHTLINE_STATUS_OK;
  }
  char* out = malloc(512);
  if (!out) return fail(self, error, FLIGHTLINE_STATUS_INTERNAL, "top_levels: out of memory");
  snprintf(out, 512,
           "[{\"severity\":\"deny\",\"code\":\"table_denied\","
           "\"message\":\"the query reads the table %s, which this deployment forbids\","
           "\"recommendation\":\"query another table\"}]",
           self->deny_table);
  *findings_json = out;
  return FLIGHTLINE_STATUS_OK;
}

static void tl_release_string(char* string) { free(string); }

static const char* tl_last_error(void* instance) {
  struct instance* self = instance;
  return self->last_error[0] ? self->last_error : NULL;
}

static void tl_destroy(void* instance) { free(instance); }

FlightlineStatus flightline_plugin_init(uint32_t version, void* table,
                                        struct FlightlineError* error) {
  if (version != FLIGHTLINE_PLUGIN_ABI_1)
    return fail(NULL, error, FLIGHTLINE_STATUS_NOT_IMPLEMENTED, "top_levels speaks ABI 1 only");
  struct FlightlinePluginTable* t = table;
  t->size = (uint32_t)FLIGHTLINE_PLUGIN_TABLE_SIZE_1;
  t->kind = FLIGHTLINE_KIND_PROCESSOR | FLIGHTLINE_KIND_VALIDATOR;
  t->name = "top_levels";
  t->version = "1.0.0";
  t->create = tl_create;
  t->open = tl_open;
  t->process = tl_process;
  t->finish = tl_finish;
  t->abort = NULL;
  t->validate = tl_validate;
  t->release_string = tl_release_string;
  t->last_error = tl_last_error;
  t->destroy = tl_destroy;
  return FLIGHTLINE_STATUS_OK;
}
