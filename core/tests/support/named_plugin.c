/*
 * A minimal plugin for the loader's tests. Its name is PLUGIN_NAME (a -D define), so that two
 * builds are two different files; its constructor, which the dynamic loader runs before anything
 * else, appends PLUGIN_NAME to the file MARKER_PATH (another -D define, when given): proof that
 * the library's code ran.
 */
#include <stdio.h>
#include <stdlib.h>

#include "flightline_plugin.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "named"
#endif

#ifdef MARKER_PATH
__attribute__((constructor)) static void mark_loaded(void) {
  FILE* file = fopen(MARKER_PATH, "a");
  if (file == NULL) return;
  fputs(PLUGIN_NAME "\n", file);
  fclose(file);
}
#endif

static FlightlineStatus nm_create(const char* options_json, const struct FlightlineHost* host,
                                  void** instance, struct FlightlineError* error) {
  (void)options_json;
  (void)host;
  (void)error;
  *instance = NULL;
  return FLIGHTLINE_STATUS_OK;
}

static void nm_release_string(char* string) { free(string); }

static void nm_destroy(void* instance) { (void)instance; }

FlightlineStatus flightline_plugin_init(uint32_t version, void* table,
                                        struct FlightlineError* error) {
  (void)error;
  if (version != FLIGHTLINE_PLUGIN_ABI_1) return FLIGHTLINE_STATUS_NOT_IMPLEMENTED;
  struct FlightlinePluginTable* t = table;
  t->size = (uint32_t)FLIGHTLINE_PLUGIN_TABLE_SIZE_1;
  t->kind = 0;
  t->name = PLUGIN_NAME;
  t->version = "0.0.1";
  t->create = nm_create;
  t->release_string = nm_release_string;
  t->destroy = nm_destroy;
  return FLIGHTLINE_STATUS_OK;
}
