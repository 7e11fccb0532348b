/*
 * A C shell callback over posix_spawn, checked end to end (issue 30,
 * point 8): scripts/test-c.sh runs this under valgrind with the debug and
 * the release libocuroot.
 *
 *   shell_spawn <repository>
 *
 * <repository> is a git repository holding examples/quickstart and
 * shell.ocu.star (shell-spawn.sh prepares one); state and intent are its
 * own (the fs store its repo.ocu.star names). Every command runs with
 * posix_spawnp, the request's `env` on top of this process's environment,
 * its output streamed to the library with ocuroot_shell_output_write as it
 * arrives. The steps:
 *
 *   1. register the environments;
 *   2. release release.ocu.star while the production deploy fails once
 *      (the callback runs a failing command in its place): failed;
 *   3. retry that release: complete;
 *   4. release it again (forced): complete, build 2;
 *   5. release shell.ocu.star: host.shell with env= given, empty and
 *      absent, both streams, and long output, each result compared.
 *
 * Prints one line per step and "shell_spawn: every check passed" at the
 * end; exits 1 on the first difference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ocuroot.h"

extern char **environ;

#define QUICKSTART "quickstart/-/release.ocu.star"
#define PROBE "quickstart/-/shell.ocu.star/@r1/task/probe#output"
/* The command that fails once, and what runs in its place. */
#define FLAKY "./deploy.sh myapp:1 production"
#define FAILING "echo 'deploy failed: the target did not answer' >&2; exit 1"

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    perror("malloc");
    exit(2);
  }
  return p;
}

/* ----- the shell callback ------------------------------------------------ */

struct shell {
  pthread_mutex_t lock;
  size_t commands;     /* how many requests arrived */
  size_t with_env;     /* how many had env= entries */
  int flaky_failed;    /* FLAKY has failed once */
};

/* The process environment with the request's variables on top (a request
 * variable replaces the process's of the same name). */
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

/* Reads both pipes until they close, handing each piece to the library as
 * it arrives: lines end up split between pieces, which the library joins.
 * Closes the descriptors. 0, or an errno. */
static int stream(ocuroot_shell_output *output, int out, int err) {
  struct pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
  const uint32_t streams[2] = {OCUROOT_STREAM_STDOUT, OCUROOT_STREAM_STDERR};
  int open_fds = 2, failure = 0;
  char buf[1000]; /* small on purpose: long output comes in many pieces */
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      failure = errno;
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
      } else if (ocuroot_shell_output_write(output, streams[i], buf, (size_t)n, NULL) !=
                 OCUROOT_RESULT_OK) {
        failure = EIO;
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0)
      close(fds[i].fd);
  return failure;
}

/* Runs `<shell> -c <command>` in the request's directory (FAILING in place
 * of FLAKY the first time). Called from several threads at once. */
static uint32_t run_shell(void *userdata, const ocuroot_shell_request *req,
                          ocuroot_shell_output *output) {
  struct shell *sh = userdata;
  const char *command = req->command;
  pthread_mutex_lock(&sh->lock);
  sh->commands++;
  if (req->env_len > 0)
    sh->with_env++;
  if (strcmp(command, FLAKY) == 0 && !sh->flaky_failed) {
    sh->flaky_failed = 1;
    command = FAILING;
  }
  pthread_mutex_unlock(&sh->lock);

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
  char *argv[] = {(char *)req->shell, "-c", (char *)command, NULL};
  pid_t pid;
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
  int failure = stream(output, out[0], err[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return cannot_run(output, "waitpid", errno);
  }
  if (failure)
    return cannot_run(output, "reading the command's output", failure);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  ocuroot_shell_output_set_exit_code(output, code, NULL);
  return OCUROOT_RESULT_OK;
}

/* ----- the steps ------------------------------------------------------------ */

static ocuroot_workspace *ws;

/* Stops with the library's error if the call failed. */
static void check(ocuroot_result rc, ocuroot_error *error, const char *what) {
  if (rc == OCUROOT_RESULT_OK)
    return;
  fprintf(stderr, "shell_spawn: %s failed (%u, %s):\n%s\n", what, (unsigned)rc,
          ocuroot_error_kind(error), ocuroot_error_message(error));
  ocuroot_error_free(error);
  ocuroot_workspace_free(ws);
  exit(1);
}

/* Stops unless `got` is `want`; frees `got` (a string from the library). */
static void expect_string(char *got, const char *want, const char *what) {
  if (got && strcmp(got, want) == 0) {
    ocuroot_string_free(got);
    return;
  }
  fprintf(stderr, "shell_spawn: %s:\n  expected %s\n  got      %s\n", what, want,
          got ? got : "(nothing)");
  ocuroot_string_free(got);
  ocuroot_workspace_free(ws);
  exit(1);
}

/* Stops unless `got` contains `want`; frees `got`. */
static void expect_contains(char *got, const char *want, const char *what) {
  if (got && strstr(got, want)) {
    ocuroot_string_free(got);
    return;
  }
  fprintf(stderr, "shell_spawn: %s:\n  expected it to contain %s\n  got %s\n", what, want,
          got ? got : "(nothing)");
  ocuroot_string_free(got);
  ocuroot_workspace_free(ws);
  exit(1);
}

/* The value of the first top-level `"name":"..."` member of a report (the
 * reports put "release" and "status" before their work items), copied into
 * buf; "" when absent. Reports escape no characters in these values. */
static const char *member(const char *json, const char *name, char *buf, size_t len) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":\"", name);
  const char *p = strstr(json, key);
  buf[0] = '\0';
  if (!p)
    return buf;
  p += strlen(key);
  const char *end = strchr(p, '"');
  size_t n = end ? (size_t)(end - p) : 0;
  if (n >= len)
    n = len - 1;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return buf;
}

/* Checks a release report's status; prints the step line with its release. */
static void expect_report(char *json, const char *step, const char *want_release,
                          const char *want_status) {
  char release[256], status[64];
  member(json, "release", release, sizeof release);
  member(json, "status", status, sizeof status);
  printf("%s: %s %s\n", step, release, status);
  fflush(stdout);
  if (strcmp(release, want_release) != 0 || strcmp(status, want_status) != 0) {
    fprintf(stderr, "shell_spawn: %s: expected %s %s; the report:\n%s\n", step, want_release,
            want_status, json);
    ocuroot_string_free(json);
    ocuroot_workspace_free(ws);
    exit(1);
  }
  ocuroot_string_free(json);
}

static char *state_get(const char *ref) {
  char *json = NULL;
  ocuroot_error *error = NULL;
  check(ocuroot_state_get(ws, ref, &json, &error), error, ref);
  return json;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <repository>\n", argv[0]);
    return 2;
  }
  struct shell *sh = xmalloc(sizeof *sh);
  memset(sh, 0, sizeof *sh);
  pthread_mutex_init(&sh->lock, NULL);

  ocuroot_error *error = NULL;
  ocuroot_workspace_options *options = ocuroot_workspace_options_new();
  check(ocuroot_workspace_options_set_shell(options, run_shell, sh, NULL, &error), error,
        "set_shell");
  check(ocuroot_workspace_options_set_parallel(options, 2, &error), error, "set_parallel");
  ocuroot_result rc = ocuroot_workspace_open(argv[1], options, &ws, &error);
  ocuroot_workspace_options_free(options);
  check(rc, error, "ocuroot_workspace_open");

  /* 1. The environments. */
  char *json = NULL;
  check(ocuroot_release_new(ws, "environments.ocu.star", false, &json, &error), error,
        "release new environments.ocu.star");
  ocuroot_string_free(json);
  printf("environments registered\n");

  /* 2. The first release: the production deploy fails. */
  check(ocuroot_release_new(ws, "release.ocu.star", false, &json, &error), error,
        "release new release.ocu.star");
  expect_report(json, "release", QUICKSTART "/@r1", "failed");
  /* What the failing command wrote to stderr, streamed through the callback. */
  expect_contains(state_get(QUICKSTART "/@r1/deploy/production/1/logs"),
                  "\"stream\":\"stderr\",\"message\":\"deploy failed: the target did not "
                  "answer\"}]",
                  "the failed deploy's log");

  /* 3. Retry: production deploys. */
  check(ocuroot_release_retry(ws, QUICKSTART "/@r1", &json, &error), error,
        "ocuroot_release_retry");
  expect_report(json, "retry", QUICKSTART "/@r1", "complete");

  /* 4. A second release of the same commit (forced). */
  check(ocuroot_release_new(ws, "release.ocu.star", true, &json, &error), error,
        "release new release.ocu.star (forced)");
  expect_report(json, "release", QUICKSTART "/@r2", "complete");
  expect_string(state_get(QUICKSTART "/@r2/task/build#output/tag"), "\"myapp:2\"",
                "the second build's tag");

  /* 5. host.shell's arguments and results through this callback. */
  check(ocuroot_release_new(ws, "shell.ocu.star", false, &json, &error), error,
        "release new shell.ocu.star");
  expect_report(json, "release", "quickstart/-/shell.ocu.star/@r1", "complete");
  expect_string(state_get(PROBE "/given"), "\"hello, world||unset\"", "env= given");
  expect_string(state_get(PROBE "/absent"), "\"unset\"", "env= absent");
  expect_string(state_get(PROBE "/empty"), "\"unset\"", "env={}");
  expect_string(state_get(PROBE "/many"), "\"0-19\"", "20 variables");
  expect_string(state_get(PROBE "/streams"), "[\"out\\n\",\"err\\n\",\"out\\nerr\\n\"]",
                "stdout, stderr and both");
  expect_string(state_get(PROBE "/long"), "[3001,\"line 0\",\"line 2999\",\"tail\",28894]",
                "long output in pieces");
  printf("host.shell: env given, empty and absent, both streams, long output\n");

  ocuroot_workspace_free(ws);
  /* Quickstart: 7 commands (the failed deploy skips its test), 2 on retry,
   * 8 in the second release; then the probe's 6, 2 of them with variables
   * (env={} passes none). */
  int counts_ok = sh->commands == 7 + 2 + 8 + 6 && sh->with_env == 2;
  printf("commands run: %zu, %zu with env\n", sh->commands, sh->with_env);
  pthread_mutex_destroy(&sh->lock);
  free(sh);
  if (!counts_ok) {
    fprintf(stderr, "shell_spawn: expected 23 commands, 2 with env\n");
    return 1;
  }
  printf("shell_spawn: every check passed\n");
  return 0;
}
