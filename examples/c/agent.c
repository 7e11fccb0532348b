/*
 * An agent in C: it drives the repository of examples/agent through
 * libocuroot, running every shell command itself (posix_spawn) and keeping
 * state and intent in two hash maps of its own (two store callbacks).
 *
 *   agent <repository>
 *
 * <repository> is a git repository holding examples/agent (agent-run.sh
 * prepares one). The steps, one line of output each:
 *
 *   1. register the environments (environments.ocu.star);
 *   2. release release.ocu.star while .fail-next-deploy makes the staging
 *      deploy fail: print the failed work item's summary;
 *   3. retry: staging completes, production waits for the release's
 *      approval (<release>/custom/approval);
 *   4. approve through intent (ocuroot_state_set, ocuroot_state_apply) and
 *      continue the release: production deploys;
 *   5. a typed read (ocuroot_state_read) of production's deploy: its
 *      version;
 *   6. a second release (forced: the commit has one), approved the same
 *      way: production runs 1.0.2;
 *   7. a rollback: a deploy intent naming the first release, with the
 *      inputs that release deployed with, applied: production runs 1.0.1.
 *
 * The results are JSON strings (include/ocuroot-json.md lists their
 * fields); this program reads them with jansson (Debian: libjansson-dev).
 * Every string the library returns is freed with ocuroot_string_free, and
 * every JSON value with json_decref: the program runs clean under valgrind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ocuroot.h"

extern char **environ;

#define PKG "agent/-/release.ocu.star"

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    perror("malloc");
    exit(2);
  }
  return p;
}

static char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) {
    perror("strdup");
    exit(2);
  }
  return p;
}

/* ----- a hash-map store ------------------------------------------------ */

struct slot {
  char *key;
  unsigned char *value;
  size_t len;
  uint64_t version;
  struct slot *next;
};

/* Keys to values with versions, chained in buckets; one lock around all. */
struct hash_store {
  const char *name;
  pthread_mutex_t lock;
  struct slot **buckets;
  size_t nbuckets, count;
  uint64_t last_version; /* every write gets a new one */
  size_t commits, conflicts;
};

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static struct hash_store *hash_store_new(const char *name) {
  struct hash_store *s = xmalloc(sizeof *s);
  memset(s, 0, sizeof *s);
  s->name = name;
  s->nbuckets = 256;
  s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
  if (!s->buckets) {
    perror("calloc");
    exit(2);
  }
  pthread_mutex_init(&s->lock, NULL);
  return s;
}

static struct slot **lookup(struct hash_store *s, const char *key) {
  struct slot **at = &s->buckets[fnv1a(key) % s->nbuckets];
  while (*at && strcmp((*at)->key, key) != 0)
    at = &(*at)->next;
  return at;
}

static void grow(struct hash_store *s) {
  size_t n = s->nbuckets * 2;
  struct slot **buckets = calloc(n, sizeof *buckets);
  if (!buckets) {
    perror("calloc");
    exit(2);
  }
  for (size_t i = 0; i < s->nbuckets; i++) {
    for (struct slot *e = s->buckets[i], *next; e; e = next) {
      next = e->next;
      size_t b = fnv1a(e->key) % n;
      e->next = buckets[b];
      buckets[b] = e;
    }
  }
  free(s->buckets);
  s->buckets = buckets;
  s->nbuckets = n;
}

static void put(struct hash_store *s, const char *key, const uint8_t *value, size_t len) {
  struct slot **at = lookup(s, key);
  if (!*at) {
    struct slot *e = xmalloc(sizeof *e);
    e->key = xstrdup(key);
    e->value = NULL;
    e->next = NULL;
    *at = e;
    if (++s->count > 2 * s->nbuckets)
      grow(s);
    at = lookup(s, key);
  }
  struct slot *e = *at;
  free(e->value);
  e->value = xmalloc(len);
  if (len)
    memcpy(e->value, value, len);
  e->len = len;
  e->version = ++s->last_version;
}

static void delete(struct hash_store *s, const char *key) {
  struct slot **at = lookup(s, key);
  struct slot *e = *at;
  if (!e)
    return;
  *at = e->next;
  free(e->key);
  free(e->value);
  free(e);
  s->count--;
}

static uint32_t store_get(void *userdata, const char *key, ocuroot_store_reply *reply) {
  struct hash_store *s = userdata;
  uint32_t rc = OCUROOT_RESULT_OK;
  pthread_mutex_lock(&s->lock);
  struct slot *e = *lookup(s, key);
  if (e)
    rc = ocuroot_store_reply_set_value(reply, e->value, e->len, e->version, NULL);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

static uint32_t store_list(void *userdata, const char *prefix, ocuroot_store_reply *reply) {
  struct hash_store *s = userdata;
  uint32_t rc = OCUROOT_RESULT_OK;
  size_t n = strlen(prefix);
  pthread_mutex_lock(&s->lock);
  /* A hash map has no order: every key is looked at (the library sorts). */
  for (size_t i = 0; i < s->nbuckets && rc == OCUROOT_RESULT_OK; i++)
    for (struct slot *e = s->buckets[i]; e && rc == OCUROOT_RESULT_OK; e = e->next)
      if (strncmp(e->key, prefix, n) == 0)
        rc = ocuroot_store_reply_add_key(reply, e->key, NULL);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

/* The version ops[i].key has once ops[0..i) are applied: 0 if absent. */
static uint64_t version_before(struct hash_store *s, const ocuroot_store_op *ops, size_t i) {
  for (size_t j = i; j-- > 0;) {
    if (strcmp(ops[j].key, ops[i].key) != 0 || ops[j].kind == OCUROOT_OP_CHECK)
      continue;
    /* Written earlier in this batch: a version no one can expect yet. */
    return ops[j].kind == OCUROOT_OP_PUT ? UINT64_MAX : 0;
  }
  struct slot *e = *lookup(s, ops[i].key);
  return e ? e->version : 0;
}

/* All of the batch or none of it: every expectation first, then writes. */
static uint32_t store_commit(void *userdata, const ocuroot_store_op *ops, size_t n,
                             ocuroot_store_reply *reply) {
  struct hash_store *s = userdata;
  pthread_mutex_lock(&s->lock);
  for (size_t i = 0; i < n; i++) {
    uint64_t v = version_before(s, ops, i);
    int ok = ops[i].expect == OCUROOT_EXPECT_ANY ||
             (ops[i].expect == OCUROOT_EXPECT_ABSENT && v == 0) ||
             (ops[i].expect == OCUROOT_EXPECT_VERSION && v != 0 && v == ops[i].version);
    if (!ok) {
      s->conflicts++;
      pthread_mutex_unlock(&s->lock);
      char message[512];
      snprintf(message, sizeof message, "%s changed since it was read", ops[i].key);
      ocuroot_store_reply_set_error(reply, message, NULL);
      return OCUROOT_RESULT_CONFLICT;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (ops[i].kind == OCUROOT_OP_PUT)
      put(s, ops[i].key, ops[i].value, ops[i].value_len);
    else if (ops[i].kind == OCUROOT_OP_DELETE)
      delete(s, ops[i].key);
  }
  s->commits++;
  pthread_mutex_unlock(&s->lock);
  return OCUROOT_RESULT_OK;
}

/* Called by the library once no workspace uses the store. */
static void store_finalize(void *userdata) {
  struct hash_store *s = userdata;
  for (size_t i = 0; i < s->nbuckets; i++) {
    for (struct slot *e = s->buckets[i], *next; e; e = next) {
      next = e->next;
      free(e->key);
      free(e->value);
      free(e);
    }
  }
  free(s->buckets);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

static ocuroot_store_callbacks callbacks_of(struct hash_store *s) {
  ocuroot_store_callbacks c = {
      .userdata = s,
      .get = store_get,
      .list = store_list,
      .commit = store_commit,
      .finalize = store_finalize,
  };
  return c;
}

/* ----- a shell runner --------------------------------------------------- */

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

/* One line of output (from any thread). */
static void say(const char *format, ...) {
  va_list args;
  va_start(args, format);
  pthread_mutex_lock(&print_lock);
  vprintf(format, args);
  putchar('\n');
  fflush(stdout);
  pthread_mutex_unlock(&print_lock);
  va_end(args);
}

/* The process environment with the request's variables on top. */
static char **environment(const ocuroot_shell_request *req) {
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = xmalloc((n + req->env_len + 1) * sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int replaced = 0;
    for (size_t j = 0; j < req->env_len && !replaced; j++)
      replaced = strncmp(req->env[j], environ[i], name_len) == 0 && req->env[j][name_len] == '=';
    if (!replaced)
      env[k++] = environ[i];
  }
  for (size_t j = 0; j < req->env_len; j++)
    env[k++] = (char *)req->env[j];
  env[k] = NULL;
  return env;
}

static uint32_t cannot_run(ocuroot_shell_output *output, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  ocuroot_shell_output_set_error(output, message, NULL);
  return 1;
}

/* Runs `<shell> -c <command>` in the request's directory with posix_spawn,
 * streaming its output to ocuroot as it arrives. Called from several
 * threads at once (parallel is 2), so it keeps no state of its own. */
static uint32_t run_shell(void *userdata, const ocuroot_shell_request *req,
                          ocuroot_shell_output *output) {
  (void)userdata;
  say("  $ %s", req->command);
  /* O_CLOEXEC: a command spawned meanwhile by another thread does not
   * inherit these pipes (and keep them open). */
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    return cannot_run(output, "pipe", errno);
  if (pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    return cannot_run(output, "pipe", e);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, req->dir);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  char **env = environment(req);
  char *argv[] = {(char *)req->shell, "-c", (char *)req->command, NULL};
  pid_t pid;
  /* posix_spawnp looks the shell up on PATH. */
  int rc = posix_spawnp(&pid, req->shell, &actions, NULL, argv, env);
  posix_spawn_file_actions_destroy(&actions);
  free(env);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    return cannot_run(output, req->shell, rc);
  }
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  uint32_t streams[2] = {OCUROOT_STREAM_STDOUT, OCUROOT_STREAM_STDERR};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !fds[i].revents)
        continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      } else {
        ocuroot_shell_output_write(output, streams[i], buf, (size_t)n, NULL);
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0)
      close(fds[i].fd);
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return cannot_run(output, "waitpid", errno);
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  ocuroot_shell_output_set_exit_code(output, code, NULL);
  return OCUROOT_RESULT_OK;
}

/* ----- calls and their JSON ---------------------------------------------- */

static ocuroot_workspace *ws;
static int failed; /* a step did not go as expected */

/* Stop with the library's error if the call failed. */
static void check(ocuroot_result rc, ocuroot_error *error, const char *what) {
  if (rc == OCUROOT_RESULT_OK)
    return;
  fprintf(stderr, "%s failed (%u, %s):\n%s\n", what, (unsigned)rc, ocuroot_error_kind(error),
          ocuroot_error_message(error));
  ocuroot_error_free(error);
  ocuroot_workspace_free(ws);
  exit(1);
}

/* Parse a string the library returned, and free the string. NULL (nothing
 * at a ref) stays NULL. */
static json_t *parse(char *text, const char *what) {
  if (!text)
    return NULL;
  json_error_t err;
  json_t *json = json_loads(text, 0, &err);
  ocuroot_string_free(text);
  if (!json) {
    fprintf(stderr, "%s: not JSON: %s\n", what, err.text);
    ocuroot_workspace_free(ws);
    exit(1);
  }
  return json;
}

/* A string member of an object, or "" (so that a comparison fails). */
static const char *field(const json_t *object, const char *name) {
  const char *s = json_string_value(json_object_get(object, name));
  return s ? s : "";
}

/* The work item of a release report with this path (task/build,
 * deploy/staging...), or NULL. */
static json_t *work_item(const json_t *report, const char *path) {
  size_t i;
  json_t *item;
  json_array_foreach(json_object_get(report, "work"), i, item) {
    if (strcmp(field(item, "path"), path) == 0)
      return item;
  }
  return NULL;
}

static void expect(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "unexpected: %s\n", what);
    failed = 1;
  }
}

static json_t *release_new(const char *file, bool force) {
  char *text = NULL;
  ocuroot_error *error = NULL;
  check(ocuroot_release_new(ws, file, force, &text, &error), error, "ocuroot_release_new");
  return parse(text, "ocuroot_release_new");
}

/* The state of a work item and, if it waits, the first ref it waits for. */
static void describe(const json_t *report, const char *path, char *buf, size_t len) {
  const json_t *item = work_item(report, path);
  const char *waiting = json_string_value(json_array_get(json_object_get(item, "waiting_for"), 0));
  snprintf(buf, len, "%s %s%s%s", path + strlen("deploy/"), field(item, "state"),
           waiting ? " on " : "", waiting ? waiting : "");
}

/* Approve `release` through intent: set its custom approval, apply that to
 * state, and continue the release. The report after. */
static json_t *approve(const char *release, const char *by) {
  char ref[256], value[64];
  snprintf(ref, sizeof ref, "%s/custom/approval", release);
  snprintf(value, sizeof value, "\"%s\"", by);
  char *text = NULL;
  ocuroot_error *error = NULL;
  check(ocuroot_state_set(ws, ref, value, &text, &error), error, "ocuroot_state_set");
  ocuroot_string_free(text);
  check(ocuroot_state_apply(ws, ref, &text, &error), error, "ocuroot_state_apply");
  json_decref(parse(text, "ocuroot_state_apply"));
  check(ocuroot_release_continue(ws, release, &text, &error), error, "ocuroot_release_continue");
  return parse(text, "ocuroot_release_continue");
}

/* A typed read: {"ref", "kind", "document"}, or NULL if absent. */
static json_t *state_read(const char *ref) {
  char *text = NULL;
  ocuroot_error *error = NULL;
  check(ocuroot_state_read(ws, ref, &text, &error), error, "ocuroot_state_read");
  return parse(text, "ocuroot_state_read");
}

/* What production runs: the version its deploy output, and the release. */
static void read_production(const char *step, const char *want_version, const char *want_release) {
  json_t *read = state_read(PKG "/@/deploy/production");
  const json_t *doc = json_object_get(read, "document");
  const char *version = field(json_object_get(doc, "output"), "version");
  const char *release = field(doc, "release");
  say("%s: production runs %s from %s (%s)", step, version, release, field(read, "kind"));
  expect(strcmp(field(read, "kind"), "work") == 0, "a work outcome");
  expect(strcmp(version, want_version) == 0, want_version);
  expect(strcmp(release, want_release) == 0, want_release);
  json_decref(read);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <repository>\n", argv[0]);
    return 2;
  }
  const char *repo = argv[1];

  /* State and intent in two stores of this program's. */
  ocuroot_error *error = NULL;
  ocuroot_workspace_options *options = ocuroot_workspace_options_new();
  ocuroot_store_callbacks state = callbacks_of(hash_store_new("state"));
  ocuroot_store_callbacks intent = callbacks_of(hash_store_new("intent"));
  check(ocuroot_workspace_options_set_store(options, &state, &error), error, "set_store");
  check(ocuroot_workspace_options_set_intent_store(options, &intent, &error), error,
        "set_intent_store");
  check(ocuroot_workspace_options_set_shell(options, run_shell, NULL, NULL, &error), error,
        "set_shell");
  check(ocuroot_workspace_options_set_parallel(options, 2, &error), error, "set_parallel");
  ocuroot_result rc = ocuroot_workspace_open(repo, options, &ws, &error);
  /* The workspace keeps what it needs of the options. */
  ocuroot_workspace_options_free(options);
  check(rc, error, "ocuroot_workspace_open");

  /* 1. The environments. */
  json_t *envs = release_new("environments.ocu.star", false);
  {
    char names[128] = "";
    size_t i;
    json_t *env;
    json_array_foreach(json_object_get(envs, "environments"), i, env) {
      strncat(names, " ", sizeof names - strlen(names) - 1);
      strncat(names, field(env, "name"), sizeof names - strlen(names) - 1);
    }
    say("environments:%s", names);
    expect(strcmp(field(envs, "kind"), "environments") == 0, "environments registered");
  }
  json_decref(envs);

  /* 2. The first release, while the next deploy fails. */
  char path[4096];
  snprintf(path, sizeof path, "%s/.fail-next-deploy", repo);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    ocuroot_workspace_free(ws);
    return 1;
  }
  fclose(f);
  json_t *report = release_new("release.ocu.star", false);
  char release1[256];
  snprintf(release1, sizeof release1, "%s", field(report, "release"));
  const json_t *staging = work_item(report, "deploy/staging");
  say("release %s: %s, staging %s: %s", release1, field(report, "status"), field(staging, "state"),
      field(staging, "summary"));
  expect(strcmp(field(report, "status"), "failed") == 0, "the first release fails");
  json_decref(report);

  /* 3. Retry: staging completes, production waits for its approval. */
  char *text = NULL;
  check(ocuroot_release_retry(ws, release1, &text, &error), error, "ocuroot_release_retry");
  report = parse(text, "ocuroot_release_retry");
  char staging_state[256], production_state[512];
  describe(report, "deploy/staging", staging_state, sizeof staging_state);
  describe(report, "deploy/production", production_state, sizeof production_state);
  say("retry: %s, %s, %s", field(report, "status"), staging_state, production_state);
  expect(strcmp(field(report, "status"), "blocked") == 0, "blocked on the approval");
  json_decref(report);

  /* 4. Approve: production deploys. */
  report = approve(release1, "alice");
  say("approve %s: %s", release1, field(report, "status"));
  expect(strcmp(field(report, "status"), "complete") == 0, "complete");
  json_decref(report);

  /* 5. A typed read of production's deploy. */
  read_production("read", "1.0.1", release1);

  /* 6. A second release of the same commit (forced), approved. */
  report = release_new("release.ocu.star", true);
  char release2[256];
  snprintf(release2, sizeof release2, "%s", field(report, "release"));
  describe(report, "deploy/production", production_state, sizeof production_state);
  say("release %s: %s, %s", release2, field(report, "status"), production_state);
  json_decref(report);
  report = approve(release2, "bob");
  say("approve %s: %s", release2, field(report, "status"));
  expect(strcmp(field(report, "status"), "complete") == 0, "complete");
  json_decref(report);
  read_production("read", "1.0.2", release2);

  /* 7. Roll production back to the first release, with the inputs it was
   * deployed with then: a deploy intent, applied. */
  char ref[512];
  snprintf(ref, sizeof ref, "%s/deploy/production", release1);
  json_t *old = state_read(ref);
  json_t *input = json_object_get(json_object_get(old, "document"), "input");
  json_t *intent_doc = json_pack("{s:s, s:O}", "release", release1, "input", input);
  char *value = json_dumps(intent_doc, JSON_COMPACT);
  json_decref(intent_doc);
  json_decref(old);
  check(ocuroot_state_set(ws, PKG "/@/deploy/production", value, &text, &error), error,
        "ocuroot_state_set");
  free(value);
  ocuroot_string_free(text);
  check(ocuroot_state_apply(ws, PKG "/@/deploy/production", &text, &error), error,
        "ocuroot_state_apply");
  json_t *outcome = parse(text, "ocuroot_state_apply");
  say("rollback: applied %zu, %zu release(s) ran",
      json_array_size(json_object_get(outcome, "applied")),
      json_array_size(json_object_get(outcome, "releases")));
  json_decref(outcome);
  read_production("after rollback", "1.0.1", release1);

  /* Freeing the workspace releases the stores: store_finalize runs. */
  ocuroot_workspace_free(ws);
  if (failed) {
    fprintf(stderr, "the agent's steps did not go as expected\n");
    return 1;
  }
  say("done");
  return 0;
}
