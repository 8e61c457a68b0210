/*
 * server — `imsd run`: the event loop, listeners and connections glued to sessions, the
 * group-commit thread, the local delivery thread, and signals (TERM/INT drain, HUP reload).
 */
#ifndef IMSD_SERVER_H
#define IMSD_SERVER_H

/* Serve until SIGTERM/SIGINT. conf_path NULL = the embedded default. Returns the exit
 * status (0 ok, 1 configuration error, 2 runtime failure). */
int server_run(const char *conf_path);

#endif
