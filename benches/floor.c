/* The floor for benches/cached.sh: a static C program that does the least
 * the cached path must do — open the store, read it, find the access token
 * and print it. Built with `musl-gcc -static -O2` by the script. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    static char buf[65536];
    if (argc != 2) return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 1;
    buf[n] = 0;
    const char key[] = "\"token\": \"";
    char *start = strstr(buf, key);
    if (!start) return 1;
    start += sizeof key - 1;
    char *end = strchr(start, '"');
    if (!end) return 1;
    *end = '\n';
    return write(1, start, (size_t)(end - start + 1)) < 0;
}
