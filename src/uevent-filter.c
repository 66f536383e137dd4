/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <linux/filter.h>
#include <stdint.h>
#include <sys/socket.h>

#include "uevent-filter.h"

/* Classic BPF loads are big-endian: characters as one word or half-word. */
#define WORD(a, b, c, d) \
        (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define HALF(a, b) (((uint32_t)(a) << 8) | (uint32_t)(b))

/* A conditional jump's offset counts from the next instruction. */
#define TO(from, to) ((unsigned char)((to) - (from)-1))

/* A load past the message's end ends the program with 0: dropped. */
#define RET_ACCEPT BPF_STMT(BPF_RET | BPF_K, 0xffffffffu)
#define RET_DROP BPF_STMT(BPF_RET | BPF_K, 0)

enum { ADD_BIND_BIND = 4, ADD_BIND_ADD = 6, ADD_BIND_ACCEPT = 16, ADD_BIND_DROP = 17, ADD_BIND_N = 18 };

static const struct sock_filter pci_add_bind[ADD_BIND_N] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('a', 'd', 'd', '@'), TO(1, ADD_BIND_ADD), 0),
        /* 2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('b', 'i', 'n', 'd'), TO(2, ADD_BIND_BIND), 0),
        /* libudev's own format (what a test bed such as umockdev sends on every socket): the listener
         * judges it */
        /* 3 */
        BPF_JUMP(
                BPF_JMP | BPF_JEQ | BPF_K, WORD('l', 'i', 'b', 'u'), TO(3, ADD_BIND_ACCEPT),
                TO(3, ADD_BIND_DROP)),
        /* BIND: "bind@" */
        /* 4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 4),
        /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, '@', TO(5, ADD_BIND_ACCEPT), TO(5, ADD_BIND_DROP)),
        /* ADD: "/devices/" but not "/devices/virtual/" (bytes 4-20) */
        /* 6 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),
        /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('/', 'd', 'e', 'v'), 0, TO(7, ADD_BIND_DROP)),
        /* 8 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8),
        /* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('i', 'c', 'e', 's'), 0, TO(9, ADD_BIND_DROP)),
        /* 10 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),
        /* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('/', 'v', 'i', 'r'), 0, TO(11, ADD_BIND_ACCEPT)),
        /* 12 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),
        /* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('t', 'u', 'a', 'l'), 0, TO(13, ADD_BIND_ACCEPT)),
        /* 14 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 20),
        /* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, '/', TO(15, ADD_BIND_DROP), TO(15, ADD_BIND_ACCEPT)),
        /* 16 */ RET_ACCEPT,
        /* 17 */ RET_DROP,
};

enum { NO_VFIO_CHECK = 15, NO_VFIO_ACCEPT = 27, NO_VFIO_DROP = 28, NO_VFIO_N = 29 };

static const struct sock_filter no_vfio_groups[NO_VFIO_N] = {
        /* X = where DEVPATH starts: after "add@" (4), "bind@"/"move@" (5), "remove@"/"change@"/
         * "unbind@"/"online@" (7) or "offline@" (8); any other shape passes */
        /* 0 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 3),
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, '@', TO(1, 8), 0),
        /* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 4),
        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, '@', TO(3, 10), 0),
        /* 4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
        /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, '@', TO(5, 12), 0),
        /* 6 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 7),
        /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, '@', TO(7, 14), TO(7, NO_VFIO_ACCEPT)),
        /* 8 */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 4),
        /* 9 */ BPF_STMT(BPF_JMP | BPF_JA, TO(9, NO_VFIO_CHECK)),
        /* 10 */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 5),
        /* 11 */ BPF_STMT(BPF_JMP | BPF_JA, TO(11, NO_VFIO_CHECK)),
        /* 12 */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 7),
        /* 13 */ BPF_STMT(BPF_JMP | BPF_JA, TO(13, NO_VFIO_CHECK)),
        /* 14 */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 8),
        /* CHECK: DEVPATH (at X) starts with "/devices/virtual/vfio/" (22 bytes) */
        /* 15 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0),
        /* 16 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('/', 'd', 'e', 'v'), 0, TO(16, NO_VFIO_ACCEPT)),
        /* 17 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, 4),
        /* 18 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('i', 'c', 'e', 's'), 0, TO(18, NO_VFIO_ACCEPT)),
        /* 19 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, 8),
        /* 20 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('/', 'v', 'i', 'r'), 0, TO(20, NO_VFIO_ACCEPT)),
        /* 21 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, 12),
        /* 22 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('t', 'u', 'a', 'l'), 0, TO(22, NO_VFIO_ACCEPT)),
        /* 23 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, 16),
        /* 24 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WORD('/', 'v', 'f', 'i'), 0, TO(24, NO_VFIO_ACCEPT)),
        /* 25 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 20),
        /* 26 */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HALF('o', '/'), TO(26, NO_VFIO_DROP), TO(26, NO_VFIO_ACCEPT)),
        /* 27 */ RET_ACCEPT,
        /* 28 */ RET_DROP,
};

int uevent_filter_attach(int fd, UeventFilter filter) {
        struct sock_fprog prog;

        switch (filter) {
        case UEVENT_FILTER_PCI_ADD_BIND:
                prog = (struct sock_fprog){ .len = ADD_BIND_N,
                                            .filter = (struct sock_filter *)pci_add_bind };
                break;
        case UEVENT_FILTER_NO_VFIO_GROUPS:
                prog = (struct sock_fprog){ .len = NO_VFIO_N,
                                            .filter = (struct sock_filter *)no_vfio_groups };
                break;
        default:
                return -EINVAL;
        }
        if (fd < 0)
                return -EBADF;
        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
                return -errno;
        return 0;
}
