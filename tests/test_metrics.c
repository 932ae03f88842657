/*
 * tests/test_metrics.c - the Prometheus endpoint: counters bumped through
 * the eng_metrics_* API come out of GET /metrics over a plain socket with
 * the right names, labels and values; everything else is refused; hostile
 * clients (oversized, silent, many at once) do not stop it serving.
 *
 * Each test runs in its own process (criterion), so the global counters
 * start at zero in every test.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "engine/metrics.h"

static void start_on(const char *listen_on);
static int connect_port(uint16_t port);
static char *read_all(int fd);
static char *http(const char *request);
static int metric(const char *text, const char *series, double *out);
static double must_metric(const char *text, const char *series);

/* start_on - start the endpoint on listen_on or fail the test */
static void
start_on(const char *listen_on)
{
	static sp_config_t cfg;
	char err[256] = "";

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.metrics_listen, sizeof(cfg.metrics_listen), "%s", listen_on);
	cr_assert_eq(eng_metrics_start(&cfg, err, sizeof(err)), 0, "start: %s", err);
	cr_assert_neq(eng_metrics_port(), 0);
}

/* connect_port - a blocking socket to 127.0.0.1:port with a 10 s timeout */
static int
connect_port(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s",
	    strerror(errno));
	return fd;
}

/* read_all - everything until EOF (or error), NUL-terminated; caller frees */
static char *
read_all(int fd)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	ssize_t n;

	cr_assert_not_null(buf);
	while ((n = recv(fd, buf + len, cap - len - 1, 0)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

/* http - send one raw request, return the whole response; caller frees */
static char *
http(const char *request)
{
	int fd = connect_port(eng_metrics_port());
	char *resp;

	cr_assert_eq(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
	resp = read_all(fd);
	close(fd);
	return resp;
}

/* metric - the value of one exposition line "SERIES VALUE"; 0 or -1 */
static int
metric(const char *text, const char *series, double *out)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ') {
			*out = strtod(p + n + 1, NULL);
			return 0;
		}
		p += n;
	}
	return -1;
}

static double
must_metric(const char *text, const char *series)
{
	double v = -1;

	cr_assert_eq(metric(text, series, &v), 0, "no series %s in:\n%s", series, text);
	return v;
}

Test(metrics, empty_listen_setting_serves_nothing)
{
	sp_config_t cfg;
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	cr_assert_eq(eng_metrics_start(&cfg, err, sizeof(err)), 0);
	cr_assert_eq(eng_metrics_port(), 0);
	eng_metrics_stop();
}

Test(metrics, bind_failure_names_the_variable)
{
	sp_config_t cfg;
	char err[256] = "";

	memset(&cfg, 0, sizeof(cfg));
	/* Occupy the port with a plain listener, then ask for it. */
	{
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
		socklen_t al = sizeof(a);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		cr_assert_eq(listen(fd, 1), 0);
		getsockname(fd, (struct sockaddr *)&a, &al);
		snprintf(cfg.metrics_listen, sizeof(cfg.metrics_listen), "127.0.0.1:%u",
		    ntohs(a.sin_port));
		cr_assert_eq(eng_metrics_start(&cfg, err, sizeof(err)), -1);
		close(fd);
	}
	cr_assert(strstr(err, "SEALPOST_METRICS_LISTEN=127.0.0.1:") != NULL, "err: %s", err);
	cr_assert(strstr(err, "in use") != NULL, "err: %s", err);
	cr_assert_eq(eng_metrics_port(), 0);
}

Test(metrics, non_numeric_address_is_refused)
{
	sp_config_t cfg;
	char err[256] = "";

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.metrics_listen, sizeof(cfg.metrics_listen), "localhost:9100");
	cr_assert_eq(eng_metrics_start(&cfg, err, sizeof(err)), -1);
	cr_assert(strstr(err, "SEALPOST_METRICS_LISTEN=localhost:9100") != NULL, "err: %s", err);
}

Test(metrics, ipv6_loopback_serves)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	char *resp;
	const char *req = "GET /metrics HTTP/1.0\r\n\r\n";

	start_on("[::1]:0");
	a.sin6_port = htons(eng_metrics_port());
	a.sin6_addr = in6addr_loopback;
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	resp = read_all(fd);
	close(fd);
	cr_assert(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", resp);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, get_metrics_reports_every_counter_bumped)
{
	char *resp, *body;
	int64_t now = (int64_t)time(NULL);

	start_on("127.0.0.1:0");
	for (int i = 0; i < 3; i++)
		eng_metrics_rcpt(Q_RCPT_SENT);
	eng_metrics_rcpt(Q_RCPT_DEFERRED);
	eng_metrics_rcpt(Q_RCPT_BOUNCED);
	eng_metrics_rcpt(Q_RCPT_BOUNCED);
	eng_metrics_rcpt(Q_RCPT_PENDING);	/* not an outcome: ignored */
	eng_metrics_message_done(0);
	eng_metrics_message_done(0);
	eng_metrics_message_done(1);
	eng_metrics_delivery("TLSv1.3", "yes", 0.02);
	eng_metrics_delivery("TLSv1.3", "yes", 0.3);
	eng_metrics_delivery("TLSv1.2", "pinned", 400);
	eng_metrics_handshake(0);
	eng_metrics_handshake(1);
	eng_metrics_handshake(1);
	eng_metrics_tls_failure("verify");
	eng_metrics_tls_failure("no_starttls");
	eng_metrics_dns(10, 4);
	eng_metrics_dns(5, 1);
	eng_metrics_queue(7, 3, 2, now - 100);
	eng_metrics_connections("example.org", 1);
	eng_metrics_connections("example.org", 1);
	eng_metrics_connections("example.net", 1);

	resp = http("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", resp);
	cr_assert(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4") != NULL);
	cr_assert(strstr(resp, "\r\nConnection: close\r\n") != NULL);
	body = strstr(resp, "\r\n\r\n");
	cr_assert_not_null(body);
	body += 4;
	{
		char want[64];

		snprintf(want, sizeof(want), "Content-Length: %zu\r\n", strlen(body));
		cr_assert(strstr(resp, want) != NULL, "length does not match body");
	}
	cr_assert_eq(must_metric(body, "sealpost_recipients_total{status=\"sent\"}"), 3);
	cr_assert_eq(must_metric(body, "sealpost_recipients_total{status=\"deferred\"}"), 1);
	cr_assert_eq(must_metric(body, "sealpost_recipients_total{status=\"bounced\"}"), 2);
	cr_assert_eq(must_metric(body, "sealpost_messages_total{outcome=\"delivered\"}"), 2);
	cr_assert_eq(must_metric(body, "sealpost_messages_total{outcome=\"bounced\"}"), 1);
	cr_assert_eq(must_metric(body,
	    "sealpost_deliveries_total{tls_version=\"TLSv1.3\",verified=\"yes\"}"), 2);
	cr_assert_eq(must_metric(body,
	    "sealpost_deliveries_total{tls_version=\"TLSv1.2\",verified=\"pinned\"}"), 1);
	cr_assert_eq(must_metric(body,
	    "sealpost_deliveries_total{tls_version=\"TLSv1.2\",verified=\"yes\"}"), 0);
	cr_assert_eq(must_metric(body, "sealpost_tls_handshakes_total{kind=\"full\"}"), 1);
	cr_assert_eq(must_metric(body, "sealpost_tls_handshakes_total{kind=\"resumed\"}"), 2);
	cr_assert_eq(must_metric(body, "sealpost_tls_failures_total{reason=\"verify\"}"), 1);
	cr_assert_eq(must_metric(body, "sealpost_tls_failures_total{reason=\"no_starttls\"}"), 1);
	cr_assert_eq(must_metric(body, "sealpost_tls_failures_total{reason=\"injection\"}"), 0);
	cr_assert_eq(must_metric(body, "sealpost_dns_lookups_total"), 15);
	cr_assert_eq(must_metric(body, "sealpost_dns_cache_hits_total"), 5);
	cr_assert_eq(must_metric(body, "sealpost_queue_messages{state=\"active\"}"), 7);
	cr_assert_eq(must_metric(body, "sealpost_queue_messages{state=\"deferred\"}"), 3);
	cr_assert_eq(must_metric(body, "sealpost_queue_messages{state=\"new\"}"), 2);
	{
		double age = must_metric(body, "sealpost_queue_oldest_message_age_seconds");

		cr_assert(age >= 100 && age <= 110, "age %f", age);
	}
	cr_assert_eq(must_metric(body,
	    "sealpost_connections_active{destination=\"example.org\"}"), 2);
	cr_assert_eq(must_metric(body,
	    "sealpost_connections_active{destination=\"example.net\"}"), 1);
	cr_assert(strstr(body, "# TYPE sealpost_recipients_total counter\n") != NULL);
	cr_assert(strstr(body, "# HELP sealpost_recipients_total ") != NULL);
	cr_assert(strstr(body, "# TYPE sealpost_delivery_latency_seconds histogram\n") != NULL);
	cr_assert(strstr(body, "# TYPE sealpost_queue_messages gauge\n") != NULL);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, latency_histogram_buckets_are_cumulative)
{
	char *text;

	eng_metrics_delivery("TLSv1.3", "yes", 0.004);
	eng_metrics_delivery("TLSv1.3", "yes", 0.02);
	eng_metrics_delivery("TLSv1.3", "yes", 0.3);
	eng_metrics_delivery("TLSv1.3", "yes", 400);
	eng_metrics_delivery("TLSv1.3", "yes", -2);	/* clock step: counted as 0 */
	text = eng_metrics_render(NULL);
	cr_assert_not_null(text);
	cr_assert_eq(must_metric(text, "sealpost_delivery_latency_seconds_bucket{le=\"0.005\"}"), 2);
	cr_assert_eq(must_metric(text, "sealpost_delivery_latency_seconds_bucket{le=\"0.025\"}"), 3);
	cr_assert_eq(must_metric(text, "sealpost_delivery_latency_seconds_bucket{le=\"0.25\"}"), 3);
	cr_assert_eq(must_metric(text, "sealpost_delivery_latency_seconds_bucket{le=\"0.5\"}"), 4);
	cr_assert_eq(must_metric(text, "sealpost_delivery_latency_seconds_bucket{le=\"300\"}"), 4);
	cr_assert_eq(must_metric(text, "sealpost_delivery_latency_seconds_bucket{le=\"+Inf\"}"), 5);
	cr_assert_eq(must_metric(text, "sealpost_delivery_latency_seconds_count"), 5);
	{
		double sum = must_metric(text, "sealpost_delivery_latency_seconds_sum");

		cr_assert(sum > 400.32 && sum < 400.33, "sum %f", sum);
	}
	free(text);
}

Test(metrics, unknown_labels_fold_into_other)
{
	char *text;
	double v;

	eng_metrics_tls_failure("something new");
	eng_metrics_tls_failure(NULL);
	eng_metrics_delivery("SSLv3", "maybe", 1);
	text = eng_metrics_render(NULL);
	cr_assert_eq(must_metric(text, "sealpost_tls_failures_total{reason=\"other\"}"), 2);
	cr_assert_eq(must_metric(text,
	    "sealpost_deliveries_total{tls_version=\"other\",verified=\"other\"}"), 1);
	cr_assert(strstr(text, "something new") == NULL);
	cr_assert_eq(metric(text,
	    "sealpost_deliveries_total{tls_version=\"TLSv1.3\",verified=\"other\"}", &v), -1,
	    "zero 'other' series are left out");
	free(text);
}

Test(metrics, destinations_beyond_the_table_count_as_other)
{
	char name[64], series[160], *text;
	double total = 0, v;

	for (int i = 0; i < ENG_METRICS_DEST_SLOTS + 6; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		eng_metrics_connections(name, 1);
	}
	text = eng_metrics_render(NULL);
	cr_assert_eq(must_metric(text, "sealpost_connections_active{destination=\"other\"}"), 6);
	for (int i = 0; i < ENG_METRICS_DEST_SLOTS; i++) {
		snprintf(series, sizeof(series),
		    "sealpost_connections_active{destination=\"d%d.example\"}", i);
		total += must_metric(text, series);
	}
	cr_assert_eq(total, ENG_METRICS_DEST_SLOTS);
	free(text);

	/* All closed: every series back to zero, nothing negative. */
	for (int i = 0; i < ENG_METRICS_DEST_SLOTS + 6; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		eng_metrics_connections(name, -1);
	}
	eng_metrics_connections("never-opened.example", -1);
	text = eng_metrics_render(NULL);
	cr_assert_eq(metric(text, "sealpost_connections_active{destination=\"other\"}", &v), -1);
	snprintf(series, sizeof(series), "sealpost_connections_active{destination=\"d0.example\"}");
	cr_assert_eq(must_metric(text, series), 0);
	cr_assert(strstr(text, "} -") == NULL && strstr(text, " 18446744073709551615") == NULL);
	free(text);

	/* A free slot is reused by a new destination. */
	eng_metrics_connections("fresh.example", 1);
	text = eng_metrics_render(NULL);
	cr_assert_eq(must_metric(text,
	    "sealpost_connections_active{destination=\"fresh.example\"}"), 1);
	cr_assert_eq(metric(text, "sealpost_connections_active{destination=\"other\"}", &v), -1);
	free(text);
}

Test(metrics, destination_label_is_escaped)
{
	char *text;

	eng_metrics_connections("evil\"} 1\nfake_metric 9\\", 1);
	text = eng_metrics_render(NULL);
	cr_assert(strstr(text, "\nfake_metric 9") == NULL, "%s", text);
	cr_assert(strstr(text, "{destination=\"evil\\\"} 1\\nfake_metric 9\\\\\"} 1\n") != NULL,
	    "%s", text);
	free(text);
}

Test(metrics, other_paths_get_404)
{
	char *resp;

	start_on("127.0.0.1:0");
	resp = http("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.1 404 ", 13) == 0, "%s", resp);
	cr_assert(strstr(resp, "sealpost_") == NULL);
	free(resp);
	resp = http("GET /metricsx HTTP/1.1\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.1 404 ", 13) == 0, "%s", resp);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, query_string_is_ignored)
{
	char *resp;

	start_on("127.0.0.1:0");
	resp = http("GET /metrics?name[]=x HTTP/1.1\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%s", resp);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, other_methods_get_405_and_garbage_400)
{
	char *resp;

	start_on("127.0.0.1:0");
	resp = http("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.1 405 ", 13) == 0, "%s", resp);
	cr_assert(strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL);
	free(resp);
	resp = http("hello\n\n");
	cr_assert(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%s", resp);
	free(resp);
	resp = http("GET /metrics HTTP/2.0\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%s", resp);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, head_sends_headers_only_and_http10_is_answered_in_kind)
{
	char *resp;

	start_on("127.0.0.1:0");
	resp = http("HEAD /metrics HTTP/1.0\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", resp);
	cr_assert(strstr(resp, "sealpost_recipients_total") == NULL);
	cr_assert(strstr(resp, "\r\n\r\n")[4] == '\0', "no body after the head");
	free(resp);
	resp = http("GET /metrics HTTP/1.0\n\n");	/* bare LF line ends */
	cr_assert(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", resp);
	cr_assert(strstr(resp, "sealpost_recipients_total") != NULL);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, oversized_request_gets_431_and_serving_goes_on)
{
	size_t n = 3 * ENG_METRICS_MAX_REQUEST;
	char *big = malloc(n + 1), *resp;
	int fd;

	start_on("127.0.0.1:0");
	memcpy(big, "GET /metrics HTTP/1.1\r\nX-Pad: ", 30);
	memset(big + 30, 'a', n - 30);
	big[n] = '\0';
	fd = connect_port(eng_metrics_port());
	/* The server stops reading at its limit: send what it takes. */
	(void)send(fd, big, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	resp = read_all(fd);
	close(fd);
	cr_assert(strncmp(resp, "HTTP/1.1 431 ", 13) == 0, "got: %.80s", resp);
	free(resp);
	free(big);
	resp = http("GET /metrics HTTP/1.1\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%s", resp);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, silent_client_is_dropped_after_the_timeout, .timeout = 30)
{
	int fd;
	char *resp;
	time_t t0 = time(NULL);

	start_on("127.0.0.1:0");
	fd = connect_port(eng_metrics_port());
	resp = read_all(fd);	/* EOF once the server gives up on us */
	close(fd);
	cr_assert_str_empty(resp);
	cr_assert_geq(time(NULL) - t0, ENG_METRICS_CLIENT_TIMEOUT - 1);
	cr_assert_leq(time(NULL) - t0, ENG_METRICS_CLIENT_TIMEOUT + 3);
	free(resp);
	eng_metrics_stop();
}

Test(metrics, more_concurrent_clients_than_slots_all_get_answers, .timeout = 60)
{
	enum { N = ENG_METRICS_MAX_CLIENTS + 8 };
	int fds[N];
	const char *req = "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";

	start_on("127.0.0.1:0");
	eng_metrics_rcpt(Q_RCPT_SENT);
	for (int i = 0; i < N; i++) {
		fds[i] = connect_port(eng_metrics_port());
		cr_assert_eq(send(fds[i], req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	}
	for (int i = 0; i < N; i++) {
		char *resp = read_all(fds[i]);
		char *body = strstr(resp, "\r\n\r\n");

		close(fds[i]);
		cr_assert(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "client %d: %.60s", i, resp);
		cr_assert_not_null(body);
		cr_assert_eq(must_metric(body + 4, "sealpost_recipients_total{status=\"sent\"}"), 1);
		free(resp);
	}
	eng_metrics_stop();
}

Test(metrics, stop_with_clients_connected_returns)
{
	int fd;

	start_on("127.0.0.1:0");
	fd = connect_port(eng_metrics_port());
	(void)send(fd, "GET /met", 8, MSG_NOSIGNAL);
	usleep(100000);
	eng_metrics_stop();
	cr_assert_eq(eng_metrics_port(), 0);
	close(fd);
	/* And it can be started again. */
	start_on("127.0.0.1:0");
	eng_metrics_stop();
}
