/* spb_payload.c -- writes Sparkplug B payloads (packed with protobuf-c) to stdout for the integration test and the fuzz corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparkplug_b.pb-c.h"

typedef Org__Eclipse__Tahu__Protobuf__Payload SpPayload;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Metric SpMetric;
#define MV(x) ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_##x

static SpMetric metric(const char *name, uint32_t datatype)
{
	SpMetric m = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__INIT;

	m.name = (char *)name;
	m.has_datatype = 1;
	m.datatype = datatype;
	return m;
}

static int emit(const SpPayload *pl)
{
	size_t len = org__eclipse__tahu__protobuf__payload__get_packed_size(pl);
	uint8_t *buf = malloc(len ? len : 1);

	if(!buf) return 1;
	org__eclipse__tahu__protobuf__payload__pack(pl, buf);
	if(fwrite(buf, 1, len, stdout) != len){
		free(buf);
		return 1;
	}
	free(buf);
	return fflush(stdout) ? 1 : 0;
}

/* NBIRTH: bdSeq, a boolean, a negative Int16 with an alias, a string, an Int8Array. */
static int nbirth(void)
{
	static const uint8_t arr[] = {0xFF, 0x02};
	SpPayload pl = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__INIT;
	SpMetric m[5] = {metric("bdSeq", 8), metric("Node Control/Rebirth", 11), metric("temp", 2),
		metric("name", 12), metric("arr", 22)};
	SpMetric *mp[5] = {&m[0], &m[1], &m[2], &m[3], &m[4]};

	pl.has_timestamp = 1;
	pl.timestamp = 1700000001000ull;
	pl.has_seq = 1;
	pl.seq = 0;
	m[0].value_case = MV(LONG_VALUE);
	m[0].long_value = 0;
	m[1].value_case = MV(BOOLEAN_VALUE);
	m[1].boolean_value = 0;
	m[2].has_alias = 1;
	m[2].alias = 1;
	m[2].value_case = MV(INT_VALUE);
	m[2].int_value = (uint32_t)-5;
	m[3].value_case = MV(STRING_VALUE);
	m[3].string_value = "edge-1";
	m[4].value_case = MV(BYTES_VALUE);
	m[4].bytes_value.data = (uint8_t *)arr;
	m[4].bytes_value.len = sizeof arr;
	pl.n_metrics = 5;
	pl.metrics = mp;
	return emit(&pl);
}

/* NDATA: by alias, a double, an Int64 below zero. */
static int ndata(void)
{
	SpPayload pl = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__INIT;
	SpMetric m[3] = {metric(NULL, 2), metric("pressure", 10), metric("big", 4)};
	SpMetric *mp[3] = {&m[0], &m[1], &m[2]};

	pl.has_timestamp = 1;
	pl.timestamp = 1700000002000ull;
	pl.has_seq = 1;
	pl.seq = 1;
	m[0].has_alias = 1;
	m[0].alias = 1;
	m[0].value_case = MV(INT_VALUE);
	m[0].int_value = (uint32_t)-7;
	m[1].value_case = MV(DOUBLE_VALUE);
	m[1].double_value = 1.25;
	m[2].value_case = MV(LONG_VALUE);
	m[2].long_value = (uint64_t)-123456;
	pl.n_metrics = 3;
	pl.metrics = mp;
	return emit(&pl);
}

/* DDATA: a float, bytes (base64), a null Int32. */
static int ddata(void)
{
	SpPayload pl = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__INIT;
	SpMetric m[3] = {metric("dev/temp", 9), metric("dev/blob", 17), metric("dev/nothing", 3)};
	SpMetric *mp[3] = {&m[0], &m[1], &m[2]};

	pl.has_timestamp = 1;
	pl.timestamp = 1700000003000ull;
	pl.has_seq = 1;
	pl.seq = 2;
	m[0].value_case = MV(FLOAT_VALUE);
	m[0].float_value = -1.5f;
	m[1].value_case = MV(BYTES_VALUE);
	m[1].bytes_value.data = (uint8_t *)"hi";
	m[1].bytes_value.len = 2;
	m[2].has_is_null = 1;
	m[2].is_null = 1;
	pl.n_metrics = 3;
	pl.metrics = mp;
	return emit(&pl);
}

/* Structured values for the fuzz corpus: a dataset, a template with a parameter, property
 * sets nested in a list, metadata. */
static int structured(void)
{
	SpPayload pl = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__INIT;
	SpMetric m[2] = {metric("table", 16), metric("_types_/T", 19)};
	SpMetric *mp[2] = {&m[0], &m[1]};
	Org__Eclipse__Tahu__Protobuf__Payload__DataSet ds = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__DataSet__Row row = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__ROW__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__DataSet__Row *rows[1] = {&row};
	Org__Eclipse__Tahu__Protobuf__Payload__DataSet__DataSetValue dv[2] = {
		ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__INIT,
		ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__INIT};
	Org__Eclipse__Tahu__Protobuf__Payload__DataSet__DataSetValue *dvp[2] = {&dv[0], &dv[1]};
	char *cols[2] = {"a", "b"};
	uint32_t types[2] = {1, 12};
	Org__Eclipse__Tahu__Protobuf__Payload__Template t = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__Template__Parameter par =
		ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__Template__Parameter *parp[1] = {&par};
	Org__Eclipse__Tahu__Protobuf__Payload__PropertySet ps = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_SET__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__PropertySet inner = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_SET__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__PropertySet *innerp[1] = {&inner};
	Org__Eclipse__Tahu__Protobuf__Payload__PropertySetList list =
		ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_SET_LIST__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__PropertyValue pv = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__INIT;
	Org__Eclipse__Tahu__Protobuf__Payload__PropertyValue *pvp[1] = {&pv};
	char *keys[1] = {"list"};
	Org__Eclipse__Tahu__Protobuf__Payload__MetaData md = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__META_DATA__INIT;

	dv[0].value_case = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_INT_VALUE;
	dv[0].int_value = (uint32_t)-3;
	dv[1].value_case = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_STRING_VALUE;
	dv[1].string_value = "x";
	row.n_elements = 2;
	row.elements = dvp;
	ds.has_num_of_columns = 1;
	ds.num_of_columns = 2;
	ds.n_columns = 2;
	ds.columns = cols;
	ds.n_types = 2;
	ds.types = types;
	ds.n_rows = 1;
	ds.rows = rows;
	m[0].value_case = MV(DATASET_VALUE);
	m[0].dataset_value = &ds;
	par.name = "p";
	par.has_type = 1;
	par.type = 3;
	par.value_case = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_INT_VALUE;
	par.int_value = (uint32_t)-1;
	t.version = "1";
	t.n_parameters = 1;
	t.parameters = parp;
	t.has_is_definition = 1;
	t.is_definition = 1;
	m[1].value_case = MV(TEMPLATE_VALUE);
	m[1].template_value = &t;
	list.n_propertyset = 1;
	list.propertyset = innerp;
	pv.has_type = 1;
	pv.type = 21;
	pv.value_case = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_PROPERTYSETS_VALUE;
	pv.propertysets_value = &list;
	ps.n_keys = 1;
	ps.keys = keys;
	ps.n_values = 1;
	ps.values = pvp;
	m[1].properties = &ps;
	md.content_type = "text/plain";
	md.has_size = 1;
	md.size = 1;
	m[0].metadata = &md;
	pl.n_metrics = 2;
	pl.metrics = mp;
	return emit(&pl);
}

/* Every array datatype, one metric each (fuzz corpus). */
static int arrays(void)
{
	static const uint8_t b16[] = {0x01, 0x80, 0xFF, 0x7F, 0x00, 0x00, 0x10, 0xC0,
		0x18, 0x2D, 0x44, 0x54, 0xFB, 0x21, 0x09, 0x40};
	SpPayload pl = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__INIT;
	SpMetric m[13];
	SpMetric *mp[13];
	uint32_t dt;
	int i = 0;

	for(dt = 22; dt <= 34; dt++, i++){
		m[i] = metric(NULL, dt);
		m[i].value_case = MV(BYTES_VALUE);
		m[i].bytes_value.data = (uint8_t *)b16;
		m[i].bytes_value.len = sizeof b16;
		mp[i] = &m[i];
	}
	m[32 - 22].bytes_value.data = (uint8_t *)"\x0c\x00\x00\x00\x34\xd0";
	m[32 - 22].bytes_value.len = 6;
	m[33 - 22].bytes_value.data = (uint8_t *)"ABC\0hello\0";
	m[33 - 22].bytes_value.len = 10;
	pl.n_metrics = 13;
	pl.metrics = mp;
	return emit(&pl);
}

int main(int argc, char **argv)
{
	if(argc == 2 && !strcmp(argv[1], "nbirth")) return nbirth();
	if(argc == 2 && !strcmp(argv[1], "ndata")) return ndata();
	if(argc == 2 && !strcmp(argv[1], "ddata")) return ddata();
	if(argc == 2 && !strcmp(argv[1], "structured")) return structured();
	if(argc == 2 && !strcmp(argv[1], "arrays")) return arrays();
	fprintf(stderr, "usage: spb_payload nbirth|ndata|ddata|structured|arrays > file\n");
	return 2;
}
