/* fakebroker21.c -- the two mosquitto 2.1 functions by which kitgate recognises a 2.1 broker at run
 * time (dlsym(RTLD_DEFAULT, ...): plugin/util/brokerinfo.c, plugin/broker/auth.c). Built as a
 * shared object that test_plugin's fake broker (fakebroker.c) loads RTLD_GLOBAL while it plays
 * mosquitto 2.1 and unloads afterwards, so one test binary plays both 2.0 and 2.1. */

/* Set by the fake broker after loading this object: records the completion on the broker side. */
void (*fb21_complete)(const char *clientid, int result);

void mosquitto_complete_basic_auth(const char *clientid, int result);
void mosquitto_complete_basic_auth(const char *clientid, int result)
{
	if(fb21_complete) fb21_complete(clientid, result);
}

/* Present only to be found (2.1's real one sets a client's will); kitgate never calls it. */
int mosquitto_client_will_set(void);
int mosquitto_client_will_set(void)
{
	return 0;
}
