/*
 * The quickstart release driven from C: ocuroot runs the release, this
 * program runs every shell command (logging each one) and keeps all state
 * in memory.
 *
 *   quickstart <repository>
 *
 * <repository> is a git repository holding examples/quickstart (run.sh
 * prepares one). Registers the environments, releases release.ocu.star,
 * prints the report, and exits 0 only if the release completed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ocuroot.h"

extern char **environ;

/* ----- an in-memory store --------------------------------------------- */

struct entry {
  char *key;
  unsigned char *value;
  size_t len;
  uint64_t version;
};

struct memory_store {
  pthread_mutex_t lock;
  struct entry *entries; /* sorted by key */
  size_t len, cap;
  uint64_t next_version;
  size_t commits, conflicts;
};

/* The index of `key`, or where it would go (and *found = 0). */
static size_t find(const struct memory_store *s, const char *key, int *found) {
  size_t lo = 0, hi = s->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(s->entries[mid].key, key);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    perror("malloc");
    exit(2);
  }
  return p;
}

static void put(struct memory_store *s, const char *key, const uint8_t *value, size_t len) {
  int found;
  size_t i = find(s, key, &found);
  if (!found) {
    if (s->len == s->cap) {
      s->cap = s->cap ? 2 * s->cap : 64;
      s->entries = realloc(s->entries, s->cap * sizeof *s->entries);
      if (!s->entries) {
        perror("realloc");
        exit(2);
      }
    }
    memmove(&s->entries[i + 1], &s->entries[i], (s->len - i) * sizeof *s->entries);
    s->len++;
    s->entries[i].key = strdup(key);
    s->entries[i].value = NULL;
  }
  free(s->entries[i].value);
  s->entries[i].value = xmalloc(len);
  if (len)
    memcpy(s->entries[i].value, value, len);
  s->entries[i].len = len;
  s->entries[i].version = ++s->next_version;
}

static void delete(struct memory_store *s, const char *key) {
  int found;
  size_t i = find(s, key, &found);
  if (!found)
    return;
  free(s->entries[i].key);
  free(s->entries[i].value);
  memmove(&s->entries[i], &s->entries[i + 1], (s->len - i - 1) * sizeof *s->entries);
  s->len--;
}

static uint32_t store_get(void *userdata, const char *key, ocuroot_store_reply *reply) {
  struct memory_store *s = userdata;
  uint32_t rc = OCUROOT_RESULT_OK;
  pthread_mutex_lock(&s->lock);
  int found;
  size_t i = find(s, key, &found);
  if (found)
    rc = ocuroot_store_reply_set_value(reply, s->entries[i].value, s->entries[i].len,
                                       s->entries[i].version, NULL);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

static uint32_t store_list(void *userdata, const char *prefix, ocuroot_store_reply *reply) {
  struct memory_store *s = userdata;
  uint32_t rc = OCUROOT_RESULT_OK;
  size_t n = strlen(prefix);
  pthread_mutex_lock(&s->lock);
  int found;
  for (size_t i = find(s, prefix, &found); i < s->len && rc == OCUROOT_RESULT_OK; i++) {
    if (strncmp(s->entries[i].key, prefix, n) != 0)
      break;
    rc = ocuroot_store_reply_add_key(reply, s->entries[i].key, NULL);
  }
  pthread_mutex_unlock(&s->lock);
  return rc;
}

/* The version `ops[i].key` has once ops[0..i) are applied: 0 if absent. */
static uint64_t version_before(const struct memory_store *s, const ocuroot_store_op *ops, size_t i) {
  for (size_t j = i; j-- > 0;) {
    if (strcmp(ops[j].key, ops[i].key) != 0 || ops[j].kind == OCUROOT_OP_CHECK)
      continue;
    /* Written earlier in this batch: a version no one can expect yet. */
    return ops[j].kind == OCUROOT_OP_PUT ? UINT64_MAX : 0;
  }
  int found;
  size_t k = find(s, ops[i].key, &found);
  return found ? s->entries[k].version : 0;
}

static uint32_t store_commit(void *userdata, const ocuroot_store_op *ops, size_t n,
                             ocuroot_store_reply *reply) {
  struct memory_store *s = userdata;
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

static void store_finalize(void *userdata) {
  struct memory_store *s = userdata;
  for (size_t i = 0; i < s->len; i++) {
    free(s->entries[i].key);
    free(s->entries[i].value);
  }
  free(s->entries);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* ----- a shell runner --------------------------------------------------- */

struct shell_log {
  pthread_mutex_t lock;
  size_t commands;
};

/* `name` found on PATH (or as given when it has a slash); NULL if absent. */
static char *which(const char *name) {
  if (strchr(name, '/'))
    return strdup(name);
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/bin:/bin";
  char *copy = strdup(path), *save = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    char *full;
    if (asprintf(&full, "%s/%s", *dir ? dir : ".", name) < 0)
      break;
    if (access(full, X_OK) == 0) {
      free(copy);
      return full;
    }
    free(full);
  }
  free(copy);
  return NULL;
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

static uint32_t fail(ocuroot_shell_output *output, const char *what) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(errno));
  ocuroot_shell_output_set_error(output, message, NULL);
  return 1;
}

/* Runs `<shell> -c <command>` in the request's directory, streaming its
 * output to ocuroot as it arrives. Called from several threads at once. */
static uint32_t run_shell(void *userdata, const ocuroot_shell_request *req,
                          ocuroot_shell_output *output) {
  struct shell_log *log = userdata;
  pthread_mutex_lock(&log->lock);
  log->commands++;
  printf("[c-shell] %s\n", req->command);
  fflush(stdout);
  pthread_mutex_unlock(&log->lock);

  char *shell = which(req->shell);
  if (!shell) {
    errno = ENOENT;
    return fail(output, req->shell);
  }
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    return free(shell), fail(output, "pipe");
  if (pipe2(err, O_CLOEXEC) != 0)
    return close(out[0]), close(out[1]), free(shell), fail(output, "pipe");
  char **env = environment(req);
  char *argv[] = {shell, "-c", (char *)req->command, NULL};
  pid_t pid = fork();
  if (pid == 0) {
    /* Only async-signal-safe calls between fork and exec. */
    if (chdir(req->dir) != 0)
      _exit(127);
    dup2(out[1], 1);
    dup2(err[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, 0);
    execve(shell, argv, env);
    _exit(127);
  }
  int saved = errno;
  close(out[1]);
  close(err[1]);
  free(env);
  free(shell);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    errno = saved;
    return fail(output, "fork");
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
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return fail(output, "waitpid");
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  ocuroot_shell_output_set_exit_code(output, code, NULL);
  return OCUROOT_RESULT_OK;
}

/* ----- the release ------------------------------------------------------- */

static int check(ocuroot_result rc, ocuroot_error *error, const char *what) {
  if (rc == OCUROOT_RESULT_OK)
    return 1;
  fprintf(stderr, "%s failed (%u, %s):\n%s\n", what, (unsigned)rc, ocuroot_error_kind(error),
          ocuroot_error_message(error));
  ocuroot_error_free(error);
  return 0;
}

/* The value of the first top-level "status" member of a JSON report
 * ("complete", "failed"...): reports put it before the work items. */
static int status_is(const char *json, const char *want) {
  const char *p = strstr(json, "\"status\":\"");
  return p && strncmp(p + 10, want, strlen(want)) == 0 && p[10 + strlen(want)] == '"';
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <repository>\n", argv[0]);
    return 2;
  }
  printf("libocuroot %s\n", ocuroot_version());

  struct memory_store *store = xmalloc(sizeof *store);
  memset(store, 0, sizeof *store);
  pthread_mutex_init(&store->lock, NULL);
  struct shell_log log = {.commands = 0};
  pthread_mutex_init(&log.lock, NULL);

  ocuroot_error *error = NULL;
  ocuroot_workspace_options *options = ocuroot_workspace_options_new();
  ocuroot_store_callbacks callbacks = {
      .userdata = store,
      .get = store_get,
      .list = store_list,
      .commit = store_commit,
      .finalize = store_finalize,
  };
  if (!check(ocuroot_workspace_options_set_store(options, &callbacks, &error), error, "set_store") ||
      !check(ocuroot_workspace_options_set_shell(options, run_shell, &log, NULL, &error), error,
             "set_shell") ||
      !check(ocuroot_workspace_options_set_parallel(options, 2, &error), error, "set_parallel"))
    return 1;

  ocuroot_workspace *ws = NULL;
  int ok = check(ocuroot_workspace_open(argv[1], options, &ws, &error), error, "open");
  ocuroot_workspace_options_free(options);
  if (!ok)
    return 1;

  char *json = NULL;
  ok = check(ocuroot_release_new(ws, "environments.ocu.star", false, &json, &error), error,
             "release new environments.ocu.star");
  if (ok) {
    printf("environments: %s\n", json);
    ocuroot_string_free(json);
    ok = check(ocuroot_release_new(ws, "release.ocu.star", false, &json, &error), error,
               "release new release.ocu.star");
  }
  int complete = 0;
  if (ok) {
    printf("report: %s\n", json);
    complete = status_is(json, "complete");
    ocuroot_string_free(json);
  }
  if (ok) {
    ok = check(ocuroot_state_get(ws, "quickstart/-/release.ocu.star/@r1/task/build#output/tag",
                                 &json, &error),
               error, "state get");
    if (ok && json) {
      printf("build tag: %s\n", json);
      ocuroot_string_free(json);
    }
  }
  pthread_mutex_lock(&store->lock);
  printf("C store: %zu keys, %zu commits, %zu conflicts\n", store->len, store->commits,
         store->conflicts);
  pthread_mutex_unlock(&store->lock);
  /* Freeing the workspace releases the store: store_finalize runs. */
  ocuroot_workspace_free(ws);
  printf("commands run through the C shell: %zu\n", log.commands);
  pthread_mutex_destroy(&log.lock);
  if (!ok || !complete) {
    fprintf(stderr, "the release did not complete\n");
    return 1;
  }
  printf("release complete\n");
  return 0;
}
