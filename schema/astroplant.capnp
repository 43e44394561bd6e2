# astroplant.capnp -- the measurement part of the AstroPlant kit schema (kit:
# astroplant_kit/proto/astroplant.capnp, same ids and ordinals), as deployed kits send it packed on
# kit/<serial>/measurement/raw and kit/<serial>/measurement/aggregate. kitgate decodes these two.
@0xfab5802082af6f74;

struct RawMeasurement @0xd6e9129572e3e9ba {
  id @0 :Data;              # 16-byte UUID, RFC 4122 byte order
  kitSerial @1 :Text;       # kits send "": filled from the topic
  datetime @2 :UInt64;      # epoch milliseconds, UTC
  peripheral @3 :Int32;
  quantityType @4 :Int32;
  value @5 :Float64;
}

struct AggregateMeasurement @0x8372b93f9d8c94cd {
  id @0 :Data;
  kitSerial @1 :Text;
  datetimeStart @2 :UInt64; # epoch milliseconds, UTC
  datetimeEnd @3 :UInt64;
  peripheral @4 :Int32;
  quantityType @5 :Int32;
  values @6 :List(Value);

  struct Value @0xd6d47cda555172ad {
    type @0 :Text;          # "count", "average", "minimum", "maximum"
    value @1 :Float64;
  }
}
