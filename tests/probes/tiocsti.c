/* Try to type into the terminal behind fds 0-2 (TIOCSTI), as a hostile container would to have
 * the user's shell run a command after pyc exits. Prints, per fd, "fd N: typed" or the error. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

int main(void) {
    const char *keys = "echo PYC-TIOCSTI-INJECTED\n";
    char line[3][128];
    for (int fd = 0; fd <= 2; fd++) {
        int ok = 1, err = 0;
        for (const char *k = keys; *k; k++) {
            if (ioctl(fd, TIOCSTI, k) != 0) {
                ok = 0;
                err = errno;
                break;
            }
        }
        snprintf(line[fd], sizeof line[fd], "fd %d: %s\n", fd, ok ? "typed" : strerror(err));
    }
    /* Printed after all tries: fd 1 may itself be one of the terminals tried. */
    for (int fd = 0; fd <= 2; fd++)
        fputs(line[fd], stdout);
    return 0;
}
