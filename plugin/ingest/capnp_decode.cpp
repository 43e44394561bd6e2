/* capnp_decode.cpp -- packed Cap'n Proto RawMeasurement / AggregateMeasurement (schema/astroplant.capnp)
 * to struct kg_record and back, with libcapnp. The only C++ in kitgate: everything here is behind
 * the C functions of kitgate/capnp.h, each of which catches every exception (kj::Exception for a
 * truncated, garbage or over-limit message, std::bad_alloc, anything else) before returning to C.
 * Pure functions, any thread (libcapnp readers and builders here are local to one call). */
#include <cassert>
#include <cmath>
#include <cstring>
#include <exception>
#include <utility>

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>

#include "astroplant.capnp.h"
extern "C" { /* C headers without their own guards */
#include "kitgate/record.h"
#include "kitgate/validate.h"
}
#include "kitgate/capnp.h"

namespace {

/* Words kept on the stack for the unpacked message: every legal measurement fits (see
 * KG_CAPNP_TRAVERSAL_WORDS), so the broker thread's hot path does not allocate. */
constexpr size_t SCRATCH_WORDS = 1024;

enum kg_reason fail(const char **detail, enum kg_reason r, const char *what)
{
	if(detail) *detail = what;
	return r;
}

/* UInt64 epoch ms to the record's int64: a time that does not fit becomes -1, which
 * kg_validate__record refuses as bad_time in its field order. */
int64_t to_ms(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
}

/* kitSerial: empty or null is the topic's; anything else must equal it. */
enum kg_reason check_serial(bool has, capnp::Text::Reader ks, const char *serial, size_t serial_len,
		struct kg_record *out, const char **detail)
{
	if(has && ks.size() > 0 && (ks.size() != serial_len || memcmp(ks.begin(), serial, serial_len) != 0)){
		return fail(detail, KG_SERIAL_MISMATCH, "kitSerial");
	}
	memcpy(out->serial, serial, serial_len);
	out->serial[serial_len] = '\0';
	return KG_OK;
}

enum kg_reason check_id(bool has, capnp::Data::Reader id, struct kg_record *out, const char **detail)
{
	if(!has || id.size() != sizeof(out->id)) return fail(detail, KG_BAD_TYPE, "id");
	memcpy(out->id, id.begin(), sizeof(out->id));
	return KG_OK;
}

/* values: copied when they fit the record (1..KG_AGG_MAX entries, names that fit the name buffer,
 * no NUL inside); otherwise nvalues stays 0, which kg_validate__record refuses as bad_value. */
void copy_values(capnp::List<AggregateMeasurement::Value>::Reader list, struct kg_record *out)
{
	unsigned n = list.size();

	out->nvalues = 0;
	if(n < 1 || n > KG_AGG_MAX) return;
	for(unsigned i = 0; i < n; i++){
		auto v = list[i];
		capnp::Text::Reader name = v.getType(); /* null pointer reads as "" */
		size_t len = name.size();

		if(len == 0 || len >= sizeof(out->values[i].name) || memchr(name.begin(), '\0', len)) return;
		memcpy(out->values[i].name, name.begin(), len);
		out->values[i].name[len] = '\0';
		out->values[i].value = v.getValue();
	}
	out->nvalues = (uint8_t)n;
}

/* Two values of one type would let subscribers and sinks read different things from one
 * message: malformed, as duplicate JSON keys are (SPEC "Measurement payloads"). */
bool has_duplicate(const struct kg_record *rec)
{
	for(int i = 0; i < rec->nvalues; i++){
		for(int j = i + 1; j < rec->nvalues; j++){
			if(!strcmp(rec->values[i].name, rec->values[j].name)) return true;
		}
	}
	return false;
}

enum kg_reason decode(int kind, const char *serial, size_t serial_len, const void *payload, size_t len,
		int64_t now_ms, const struct kg_limits *limits, struct kg_record *out, const char **detail)
{
	capnp::word scratch[SCRATCH_WORDS];
	capnp::ReaderOptions opts;
	enum kg_reason r;

	opts.traversalLimitInWords = KG_CAPNP_TRAVERSAL_WORDS;
	opts.nestingLimit = KG_CAPNP_NESTING;
	kj::ArrayInputStream in(kj::ArrayPtr<const kj::byte>(static_cast<const kj::byte *>(payload), len));
	capnp::PackedMessageReader msg(in, opts, kj::ArrayPtr<capnp::word>(scratch, SCRATCH_WORDS));

	if(kind == KG_KIND_RAW){
		RawMeasurement::Reader m = msg.getRoot<RawMeasurement>();
		if((r = check_id(m.hasId(), m.getId(), out, detail)) != KG_OK) return r;
		if((r = check_serial(m.hasKitSerial(), m.getKitSerial(), serial, serial_len, out, detail)) != KG_OK) return r;
		out->datetime_ms = to_ms(m.getDatetime());
		out->peripheral = m.getPeripheral();
		out->quantity_type = m.getQuantityType();
		out->value = m.getValue();
	}else{
		AggregateMeasurement::Reader m = msg.getRoot<AggregateMeasurement>();
		if((r = check_id(m.hasId(), m.getId(), out, detail)) != KG_OK) return r;
		if((r = check_serial(m.hasKitSerial(), m.getKitSerial(), serial, serial_len, out, detail)) != KG_OK) return r;
		out->start_ms = to_ms(m.getDatetimeStart());
		out->end_ms = to_ms(m.getDatetimeEnd());
		out->peripheral = m.getPeripheral();
		out->quantity_type = m.getQuantityType();
		copy_values(m.getValues(), out);
	}
	/* One message per payload: bytes after it (or segments never read) are not ours to ignore. */
	if(in.tryGetReadBuffer().size() != 0) return fail(detail, KG_MALFORMED, "trailing data");
	if((r = kg_validate__record(out, now_ms, limits, detail)) != KG_OK) return r;
	if(kind == KG_KIND_AGGREGATE && has_duplicate(out)) return fail(detail, KG_MALFORMED, "values: duplicate type");
	return KG_OK;
}

/* libkj's own reporting, silenced while one decode runs: a malformed payload can make the library
 * hit a second fault while the first one unwinds (a multi-segment message whose packed input ends
 * early: the reader's destructor skips the unread segments and fails), which kj's root callback
 * writes to stderr (~400 bytes with a stack trace, unthrottled). Here such a fault is dropped
 * (the payload is already refused as malformed, and counted and logged, rate-limited, like every
 * reason); a fault outside unwinding still throws, as by default; log lines are dropped.
 * Constructed on the stack of the thread that decodes (kj keeps the callbacks per thread). */
class QuietCallback final: public kj::ExceptionCallback {
public:
	void onRecoverableException(kj::Exception &&e) override
	{
		if(std::uncaught_exceptions() > 0) return; /* a second fault during unwinding */
		throw std::move(e);
	}
	void logMessage(kj::LogSeverity, const char *, int, int, kj::String &&) override {}
};

} // namespace

extern "C" enum kg_reason kg_capnp__decode(int kind, const char *serial, size_t serial_len,
		const void *payload, size_t len, int64_t now_ms, const struct kg_limits *limits,
		struct kg_record *out, const char **detail)
{
	assert(limits && out);
	assert(kind == KG_KIND_RAW || kind == KG_KIND_AGGREGATE);
	if(detail) *detail = "";
	/* Same order as kg_validate__measurement: size, the topic's serial, then the payload. */
	if(len > limits->max_payload) return fail(detail, KG_TOO_LARGE, "payload");
	if(serial_len > KG_SERIAL_MAX) return fail(detail, KG_MALFORMED, "serial too long");
	if(!serial || serial_len == 0) return fail(detail, KG_MALFORMED, "serial empty");
	if(len == 0 || !payload) return fail(detail, KG_MALFORMED, "empty");

	kg_record__reset(out, (uint8_t)kind);
	QuietCallback quiet;
	try{
		enum kg_reason r = decode(kind, serial, serial_len, payload, len, now_ms, limits, out, detail);
		if(r == KG_OK && detail) *detail = "";
		return r;
	}catch(const kj::Exception &){
		return fail(detail, KG_MALFORMED, "capnp");
	}catch(...){ /* std::bad_alloc: refuse the message, never unwind into C */
		return fail(detail, KG_MALFORMED, "capnp: out of memory");
	}
}

extern "C" size_t kg_capnp__encode(const struct kg_record *rec, uint8_t *buf, size_t cap)
{
	if(!rec || (rec->kind != KG_KIND_RAW && rec->kind != KG_KIND_AGGREGATE)) return 0;
	try{
		capnp::MallocMessageBuilder mb(256); /* one segment for any record */
		capnp::Data::Reader id(rec->id, sizeof(rec->id));
		capnp::Text::Reader serial(rec->serial, strnlen(rec->serial, sizeof(rec->serial)));

		if(rec->kind == KG_KIND_RAW){
			RawMeasurement::Builder m = mb.initRoot<RawMeasurement>();
			m.setId(id);
			m.setKitSerial(serial);
			m.setDatetime((uint64_t)rec->datetime_ms);
			m.setPeripheral(rec->peripheral);
			m.setQuantityType(rec->quantity_type);
			m.setValue(rec->value);
		}else{
			AggregateMeasurement::Builder m = mb.initRoot<AggregateMeasurement>();
			m.setId(id);
			m.setKitSerial(serial);
			m.setDatetimeStart((uint64_t)rec->start_ms);
			m.setDatetimeEnd((uint64_t)rec->end_ms);
			m.setPeripheral(rec->peripheral);
			m.setQuantityType(rec->quantity_type);
			auto vals = m.initValues(rec->nvalues > KG_AGG_MAX ? KG_AGG_MAX : rec->nvalues);
			for(unsigned i = 0; i < vals.size(); i++){
				const char *name = rec->values[i].name;
				vals[i].setType(capnp::Text::Reader(name, strnlen(name, sizeof(rec->values[i].name))));
				vals[i].setValue(rec->values[i].value);
			}
		}
		kj::VectorOutputStream os;
		capnp::writePackedMessage(os, mb);
		kj::ArrayPtr<kj::byte> bytes = os.getArray();
		if(bytes.size() <= cap && buf) memcpy(buf, bytes.begin(), bytes.size());
		return bytes.size();
	}catch(...){
		return 0;
	}
}
