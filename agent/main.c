/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* main(): options, logging setup, then the daemon (everything else is in the static library). */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "strv.h"

static const char *arg_bus_address = NULL;
static char **arg_config_dirs = NULL;
static bool arg_config_dirs_set = false;
static const char *arg_state_dir = NULL;
static const char *arg_runtime_dir = NULL;
static bool arg_no_load_modules = false;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Keep the host's PCI devices in their declared state for VM passthrough.\n\n"
               "  -h --help                 Show this help\n"
               "     --version              Show the version\n"
               "     --bus-address=ADDRESS  Connect to this D-Bus address instead of the system bus\n"
               "     --config-dirs=DIR:...  Read desired-state drop-ins from these directories,\n"
               "                            lowest priority first (default: " HOSTDEVD_CONF_DIR_USR ":\n"
               "                            " HOSTDEVD_CONF_DIR_ETC ":" HOSTDEVD_CONF_DIR_RUN ")\n"
               "     --state-dir=DIR        Ownership records and persistent requests (default:\n"
               "                            " HOSTDEVD_STATE_DIR ")\n"
               "     --runtime-dir=DIR      Transient requests go to DIR/" HOSTDEVD_REQUESTS_SUBDIR
               " (default:\n"
               "                            " HOSTDEVD_RUNTIME_DIR ")\n"
               "     --no-load-modules      Never load a driver's kernel module: refuse to bind to a\n"
               "                            driver that is not registered\n"
               "     --log-level=LEVEL      emerg, alert, crit, err, warning, notice, info, debug\n"
               "     --log-target=TARGET    auto, console, journal\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_BUS_ADDRESS,
                ARG_LOG_LEVEL,
                ARG_LOG_TARGET,
                ARG_CONFIG_DIRS,
                ARG_STATE_DIR,
                ARG_RUNTIME_DIR,
                ARG_NO_LOAD_MODULES,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "config-dirs", required_argument, NULL, ARG_CONFIG_DIRS },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "no-load-modules", no_argument, NULL, ARG_NO_LOAD_MODULES },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("hostdevd %s\n", HOSTDEVD_VERSION);
                        return 0;
                case ARG_BUS_ADDRESS:
                        if (!*optarg)
                                return log_error_errno(-EINVAL, "Empty bus address");
                        arg_bus_address = optarg;
                        break;
                case ARG_CONFIG_DIRS:
                        arg_config_dirs = strv_free(arg_config_dirs);
                        r = strv_split(optarg, ":", &arg_config_dirs);
                        if (r < 0)
                                return log_error_errno(r, "Out of memory");
                        STRV_FOREACH (dir, arg_config_dirs)
                                if (**dir != '/')
                                        return log_error_errno(
                                                -EINVAL, "--config-dirs: '%s' is not an absolute path",
                                                *dir);
                        arg_config_dirs_set = true;
                        break;
                case ARG_STATE_DIR:
                case ARG_RUNTIME_DIR:
                        if (optarg[0] != '/')
                                return log_error_errno(
                                        -EINVAL, "--%s: '%s' is not an absolute path",
                                        c == ARG_STATE_DIR ? "state-dir" : "runtime-dir", optarg);
                        if (c == ARG_STATE_DIR)
                                arg_state_dir = optarg;
                        else
                                arg_runtime_dir = optarg;
                        break;
                case ARG_NO_LOAD_MODULES:
                        arg_no_load_modules = true;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_level_from_string(optarg);
                        if (r < 0)
                                return log_error_errno(r, "Invalid log level '%s'", optarg);
                        log_set_max_level(r);
                        break;
                case ARG_LOG_TARGET: {
                        LogTarget t = log_target_from_string(optarg);

                        if (t < 0)
                                return log_error_errno(t, "Invalid log target '%s'", optarg);
                        log_set_target(t);
                        break;
                }
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(-EINVAL, "Unhandled option %c", c);
                }

        if (optind < argc)
                return log_error_errno(-EINVAL, "%s takes no arguments", program_invocation_short_name);

        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        DaemonOptions options = {};
        int r;

        log_set_ident("hostdevd");

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        options.bus_address = arg_bus_address;
        options.state_dir = arg_state_dir;
        options.runtime_dir = arg_runtime_dir;
        options.no_load_modules = arg_no_load_modules;
        if (arg_config_dirs_set) {
                /* "--config-dirs=" (empty): no configuration directory, only the request directories. */
                static char *none[] = { NULL };

                options.config_dirs = arg_config_dirs ?: none;
        }

        r = daemon_new(&options, &d);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate the daemon: %m");
                return EXIT_FAILURE;
        }

        r = daemon_start(d);
        if (r < 0)
                return EXIT_FAILURE;

        r = daemon_run(d);
        d = daemon_free(d);
        arg_config_dirs = strv_free(arg_config_dirs);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
