#ifndef IMSD_VERSION_H
#define IMSD_VERSION_H
#define IMSD_VERSION "0.1.0"
#endif
