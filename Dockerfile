# Dockerfile -- Debian's mosquitto 2.0.11 with the kitgate plugin.
#
# Why not the eclipse-mosquitto image: it is Alpine (musl libc) and ships its own mosquitto build,
# while kitgate is built against glibc and Debian bookworm's mosquitto 2.0.11 (plugin API v5,
# mosquitto-dev headers) with Debian's libpq, librdkafka and cJSON. So both stages are Debian
# bookworm: the build stage runs the very scripts CI runs (ci/deps, ci/package) and the image
# installs the same Debian package (kitgate_<version>_<arch>.deb) that CI installs with dpkg -i,
# so apt resolves its Depends.
#
#   docker build -t kitgate .
#   docker run -p 1883:1883 \
#     -v $PWD/passwd:/etc/mosquitto/passwd:ro \
#     -e DATABASE_URL=postgresql://astroplant:secret@db/astroplant kitgate
#
# Configuration: /etc/mosquitto/conf.d/kitgate.conf is mosquitto.conf.example (listener 1883,
# password_file /etc/mosquitto/passwd, plugin options commented with their defaults; the
# environment fallbacks DATABASE_URL, KITGATE_SINK, KAFKA_HOST, ... apply). Mount your own
# kitgate.conf over it to change options. The spool lives in the volume /var/lib/mosquitto.

FROM debian:bookworm AS build
WORKDIR /src
COPY . .
RUN ci/deps && ci/package /out

FROM debian:bookworm-slim
COPY --from=build /out/ /tmp/pkg/
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		ca-certificates /tmp/pkg/kitgate_*.deb \
	&& rm -rf /var/lib/apt/lists/* /tmp/pkg
COPY mosquitto.conf.example /etc/mosquitto/conf.d/kitgate.conf
# Debian's mosquitto.conf logs to a file; in a container log to stdout. The broker starts as root
# and drops to user mosquitto, which must own the spool and read the password file. An empty
# password file lets the broker start before one is mounted (every login then fails).
RUN printf '%s\n' \
		'persistence true' \
		'persistence_location /var/lib/mosquitto/' \
		'log_dest stdout' \
		'include_dir /etc/mosquitto/conf.d' >/etc/mosquitto/mosquitto.conf \
	&& install -d -o mosquitto -g mosquitto /var/lib/mosquitto /var/lib/mosquitto/kitgate \
	&& install -m 600 -o mosquitto -g mosquitto /dev/null /etc/mosquitto/passwd \
	&& if ldd /usr/lib/*/mosquitto_kitgate.so | grep 'not found'; then exit 1; fi
VOLUME /var/lib/mosquitto
EXPOSE 1883
CMD ["/usr/sbin/mosquitto", "-c", "/etc/mosquitto/mosquitto.conf"]
