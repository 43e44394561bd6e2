/* plugin_version_probe.c -- loads the plugin (lazily, without a broker) and asks its
 * mosquitto_plugin_version what a 1.6-style broker (API 4,3,2) and a 2.x broker (5,4,3,2) would:
 * prints "4,3,2 -> <rc>" and "5,4,3,2 -> <rc>" on stdout; the plugin's own line goes to stderr.
 * Used by the unit.plugin_version test (tests/CMakeLists.txt). */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	static const int v4[] = { 4, 3, 2 }, v5[] = { 5, 4, 3, 2 };
	int (*pv)(int, const int *);
	void *h;

	if(argc != 2){
		fprintf(stderr, "usage: plugin_version_probe PLUGIN.so\n");
		return 2;
	}
	h = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
	if(!h){
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 2;
	}
	*(void **)&pv = dlsym(h, "mosquitto_plugin_version");
	if(!pv){
		fprintf(stderr, "no mosquitto_plugin_version in %s\n", argv[1]);
		return 2;
	}
	printf("4,3,2 -> %d\n", pv(3, v4));
	printf("5,4,3,2 -> %d\n", pv(4, v5));
	fflush(stdout);
	return 0;
}
