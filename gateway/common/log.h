/* log.h - leveled logging to stderr. Thread: any (one write(2) per line). */
#ifndef GW_LOG_H
#define GW_LOG_H

typedef enum gw_log_level { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR } gw_log_level;

/* gw_log_set_level sets the minimum level printed (default INFO); set once
 * at start-up, before threads start. */
void gw_log_set_level(gw_log_level l);
void gw_log(gw_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define GW_DEBUG(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__)
#define GW_INFO(...)  gw_log(GW_LOG_INFO, __VA_ARGS__)
#define GW_WARN(...)  gw_log(GW_LOG_WARN, __VA_ARGS__)
#define GW_ERROR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)

#endif
