/* log.c - stderr logging; each line is formatted first and written with one
 * write(2) so lines from different threads never interleave. */
#include <slora/log.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int min_level = SLORA_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void slora_log_set_level(enum slora_log_level level)
{
    __atomic_store_n(&min_level, (int)level, __ATOMIC_RELAXED);
}

int slora_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

void slora_log(enum slora_log_level level, const char *fmt, ...)
{
    if ((int)level < __atomic_load_n(&min_level, __ATOMIC_RELAXED))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
                  level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (k < 0) ? n : (n + k >= (int)sizeof(line) - 1 ? (int)sizeof(line) - 2 : n + k);
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
