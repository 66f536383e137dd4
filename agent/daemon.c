/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* placeholder: being written */
int daemon_placeholder(void);
int daemon_placeholder(void) {
        return 0;
}
