/* log.h - leveled logging to stderr, one line per call, thread-safe. */
#ifndef SLORA_LOG_H
#define SLORA_LOG_H

enum slora_log_level { SLORA_LOG_DEBUG, SLORA_LOG_INFO, SLORA_LOG_WARN, SLORA_LOG_ERROR };

void slora_log_set_level(enum slora_log_level level);
/* Parse "debug"/"info"/"warn"/"error"; -1 when unknown. */
int slora_log_level_parse(const char *s);
void slora_log(enum slora_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define slora_debug(...) slora_log(SLORA_LOG_DEBUG, __VA_ARGS__)
#define slora_info(...) slora_log(SLORA_LOG_INFO, __VA_ARGS__)
#define slora_warn(...) slora_log(SLORA_LOG_WARN, __VA_ARGS__)
#define slora_error(...) slora_log(SLORA_LOG_ERROR, __VA_ARGS__)

#endif
