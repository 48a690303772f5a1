/* fsync-floor: the physical floor of one durable step transition.
 *
 *   fsync-floor DIR SIZE COUNT
 *
 * Writes COUNT times a file of SIZE bytes in DIR the way any durable
 * checkpoint must (write a temporary file, fsync, rename over the old one)
 * and prints one duration in milliseconds a line, so the benchmark can put
 * the engine's cost next to what the disk itself costs, measured in the
 * same run on the same machine. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: fsync-floor DIR SIZE COUNT\n");
        return 2;
    }
    size_t size = (size_t)atol(argv[2]);
    int count = atoi(argv[3]);
    char *data = malloc(size ? size : 1);
    memset(data, 'x', size);
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/floor.tmp", argv[1]);
    snprintf(final, sizeof final, "%s/floor.json", argv[1]);
    for (int i = 0; i < count; i++) {
        double t0 = now();
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, data, size) != (ssize_t)size || fsync(fd) != 0 || close(fd) != 0 ||
            rename(tmp, final) != 0) {
            perror("fsync-floor");
            return 1;
        }
        printf("%.4f\n", (now() - t0) * 1000);
    }
    unlink(final);
    free(data);
    return 0;
}
