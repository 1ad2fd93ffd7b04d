// pbjson.cc - the C face of libprotobuf's JSON mapping (pbjson.h).
//
// The pool: a DescriptorPool over a MergedDescriptorDatabase of (1) the
// generated pool of this process (the well-known types libprotobuf links)
// and (2) a SimpleDescriptorDatabase of the files added. The pool loads a
// file from the databases the first time a name in it is looked up. An add
// first checks the whole set against what is there (same name, other
// content: refused) and that it builds in a scratch pool, then adds it:
// all or nothing. No C++ exception crosses into C: every entry point
// catches them.
#include "pbjson.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/type.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/wire_format_lite.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <pthread.h>
#include <string>

namespace pb = google::protobuf;

static const char kUrlPrefix[] = "type.googleapis.com";

namespace
{
// CachingResolver remembers what the pool's resolver answered.
// NewTypeResolverForDescriptorPool converts a message's descriptor to a
// google.protobuf.Type anew at every call, and each conversion asks for
// every type it meets: most of a small message's JSON cost. The pool only
// grows (a file of a name never changes: spawn_pbjson_add refuses that), so
// an answer stays true; the cache holds at most one entry per type of the
// pool.
class CachingResolver : public pb::util::TypeResolver
{
      public:
	explicit CachingResolver(pb::util::TypeResolver *inner) : inner_(inner)
	{
		pthread_mutex_init(&mu_, nullptr);
	}
	~CachingResolver() override
	{
		pthread_mutex_destroy(&mu_);
	}
	pb::util::Status ResolveMessageType(const std::string &url, pb::Type *type) override
	{
		return resolve(types_, url, type, [this](const std::string &u, pb::Type *t) {
			return inner_->ResolveMessageType(u, t);
		});
	}
	pb::util::Status ResolveEnumType(const std::string &url, pb::Enum *e) override
	{
		return resolve(enums_, url, e, [this](const std::string &u, pb::Enum *t) {
			return inner_->ResolveEnumType(u, t);
		});
	}

      private:
	template <typename T, typename F>
	pb::util::Status resolve(std::map<std::string, T> &cache, const std::string &url, T *out,
	                         F ask)
	{
		pthread_mutex_lock(&mu_);
		auto it = cache.find(url);
		bool hit = it != cache.end();
		if (hit)
			*out = it->second;
		pthread_mutex_unlock(&mu_);
		if (hit)
			return pb::util::Status();
		pb::util::Status st = ask(url, out);
		if (st.ok()) {
			pthread_mutex_lock(&mu_);
			cache.emplace(url, *out);
			pthread_mutex_unlock(&mu_);
		}
		return st;
	}
	std::unique_ptr<pb::util::TypeResolver> inner_;
	pthread_mutex_t mu_;
	std::map<std::string, pb::Type> types_; // mu_
	std::map<std::string, pb::Enum> enums_; // mu_
};
} // namespace

struct spawn_pbjson {
	pb::DescriptorPoolDatabase generated{*pb::DescriptorPool::generated_pool()};
	pb::SimpleDescriptorDatabase added;
	pb::MergedDescriptorDatabase merged{&generated, &added};
	pb::DescriptorPool pool{&merged};
	std::unique_ptr<pb::util::TypeResolver> resolver{
	    new CachingResolver(pb::util::NewTypeResolverForDescriptorPool(kUrlPrefix, &pool))};
	pb::DynamicMessageFactory factory{&pool}; // thread-safe GetPrototype
	pthread_rwlock_t mu; // adds exclusive, conversions shared; writers first
	spawn_pbjson()
	{
		pthread_rwlockattr_t a;
		pthread_rwlockattr_init(&a);
		// glibc's default prefers readers: a steady stream of conversions
		// would starve an add for ever.
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&mu, &a);
		pthread_rwlockattr_destroy(&a);
	}
	~spawn_pbjson()
	{
		pthread_rwlock_destroy(&mu);
	}
};

namespace
{
// Holds p->mu for a scope: shared (conversions) or exclusive (adds).
struct Lock {
	pthread_rwlock_t *mu;
	Lock(pthread_rwlock_t *m, bool exclusive) : mu(m)
	{
		if (exclusive)
			pthread_rwlock_wrlock(mu);
		else
			pthread_rwlock_rdlock(mu);
	}
	~Lock()
	{
		pthread_rwlock_unlock(mu);
	}
	Lock(const Lock &) = delete;
	Lock &operator=(const Lock &) = delete;
};

// Deepest nesting of objects and arrays a JSON input may have. libprotobuf's
// parser recurses per level without a bound of its own: a hostile body of
// "[[[[..." would overflow the stack. A message nested this deep is not a
// request anyone means.
constexpr int kMaxDepth = 64;

// too_deep tells whether json nests objects or arrays deeper than kMaxDepth
// (brackets inside strings do not count). Not a parser: it only counts.
bool too_deep(const char *json, size_t len)
{
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = json[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > kMaxDepth)
				return true;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return false;
}
} // namespace

// copy_bin / copy_text hand out out as a malloc'd buffer (text: with a NUL).
static int copy_bin(const std::string &out, uint8_t **bin, size_t *bin_len)
{
	uint8_t *buf = static_cast<uint8_t *>(std::malloc(out.size() ? out.size() : 1));
	if (!buf)
		return SPAWN_PBJSON_ENOMEM;
	std::memcpy(buf, out.data(), out.size());
	*bin = buf;
	*bin_len = out.size();
	return SPAWN_PBJSON_OK;
}

static int copy_text(const std::string &out, char **json, size_t *json_len)
{
	char *buf = static_cast<char *>(std::malloc(out.size() + 1));
	if (!buf)
		return SPAWN_PBJSON_ENOMEM;
	std::memcpy(buf, out.data(), out.size());
	buf[out.size()] = '\0';
	*json = buf;
	if (json_len)
		*json_len = out.size();
	return SPAWN_PBJSON_OK;
}

// set_err copies msg into err. libprotobuf's messages quote the input
// ("<field>: Cannot find field."), so a NUL or control byte of a hostile
// body would cut or garble them: each becomes '?'.
static void set_err(char *err, size_t errlen, const std::string &msg)
{
	if (!err || !errlen)
		return;
	size_t n = 0;
	for (size_t i = 0; i < msg.size() && n + 1 < errlen; i++) {
		unsigned char c = static_cast<unsigned char>(msg[i]);
		err[n++] = c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
	}
	err[n] = '\0';
	if (!n && errlen > 1)
		std::snprintf(err, errlen, "invalid input");
}

// find_type: the message type full_name of the pool (under p->mu), or
// nullptr with err set.
static const pb::Descriptor *find_type(spawn_pbjson *p, const char *full_name, char *err,
                                       size_t errlen)
{
	const pb::Descriptor *d = full_name ? p->pool.FindMessageTypeByName(full_name) : nullptr;
	if (!d)
		set_err(err, errlen,
		        std::string("unknown message type '") + (full_name ? full_name : "") + "'");
	return d;
}

extern "C" spawn_pbjson *spawn_pbjson_create(void)
{
	try {
		return new spawn_pbjson();
	} catch (...) {
		return nullptr;
	}
}

extern "C" void spawn_pbjson_destroy(spawn_pbjson *p)
{
	delete p;
}

namespace
{
// strip_message drops what two compilations of one .proto may differ in
// without meaning anything else: json_name (some protoc versions fill it
// in), recursively.
void strip_message(pb::DescriptorProto *m)
{
	for (auto &f : *m->mutable_field())
		f.clear_json_name();
	for (auto &f : *m->mutable_extension())
		f.clear_json_name();
	for (auto &n : *m->mutable_nested_type())
		strip_message(&n);
}

// canonical is the content two files are compared by.
std::string canonical(const pb::FileDescriptorProto &in)
{
	pb::FileDescriptorProto f = in;
	f.clear_source_code_info();
	for (auto &m : *f.mutable_message_type())
		strip_message(&m);
	for (auto &x : *f.mutable_extension())
		x.clear_json_name();
	std::string out;
	f.SerializeToString(&out);
	return out;
}

// Collects what a scratch build of a set complains about.
struct Collector : pb::DescriptorPool::ErrorCollector {
	std::string first;
	void AddError(const std::string &file, const std::string &element, const pb::Message *,
	              ErrorLocation, const std::string &message) override
	{
		if (first.empty())
			first = file + ": " + (element.empty() ? "" : element + ": ") + message;
	}
};
} // namespace

extern "C" int spawn_pbjson_add(spawn_pbjson *p, const uint8_t *data, size_t len, char *err,
                                size_t errlen)
{
	try {
		pb::FileDescriptorSet set;
		if (len > INT32_MAX || !set.ParseFromArray(data, (int)len)) {
			set_err(err, errlen, "not a serialized google.protobuf.FileDescriptorSet");
			return SPAWN_PBJSON_EINVAL;
		}
		Lock lock(&p->mu, true);
		// Files already known: identical content is fine, other content is
		// a conflict. The rest must build (with what is known) in a scratch
		// pool before any of it is added.
		pb::SimpleDescriptorDatabase fresh;
		pb::MergedDescriptorDatabase with_fresh(&p->merged, &fresh);
		for (const pb::FileDescriptorProto &f : set.file()) {
			pb::FileDescriptorProto known;
			// The well-known types of this build win over a set's copy (an
			// older or newer protoc's any.proto differs in options only).
			if (p->generated.FindFileByName(f.name(), &known))
				continue;
			if (p->added.FindFileByName(f.name(), &known)) {
				if (canonical(known) != canonical(f)) {
					set_err(err, errlen,
					        "file '" + f.name() +
					            "' is already known with other content");
					return SPAWN_PBJSON_ECONFLICT;
				}
				continue;
			}
			if (!fresh.Add(f)) {
				set_err(err, errlen,
				        "file '" + f.name() +
				            "' does not fit the pool (a name "
				            "it defines is defined elsewhere)");
				return SPAWN_PBJSON_ECONFLICT;
			}
		}
		Collector errors;
		pb::DescriptorPool scratch(&with_fresh, &errors);
		for (const pb::FileDescriptorProto &f : set.file()) {
			if (!scratch.FindFileByName(f.name())) {
				set_err(err, errlen,
				        errors.first.empty()
				            ? "file '" + f.name() + "' does not build"
				            : errors.first);
				return SPAWN_PBJSON_EINVAL;
			}
		}
		for (const pb::FileDescriptorProto &f : set.file()) {
			pb::FileDescriptorProto known;
			if (!p->added.FindFileByName(f.name(), &known) &&
			    !p->generated.FindFileByName(f.name(), &known))
				p->added.Add(f);
		}
		return SPAWN_PBJSON_OK;
	} catch (const std::bad_alloc &) {
		return SPAWN_PBJSON_ENOMEM;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		return SPAWN_PBJSON_EINVAL;
	}
}

extern "C" bool spawn_pbjson_has(spawn_pbjson *p, const char *full_name)
{
	try {
		Lock lock(&p->mu, false);
		return full_name && p->pool.FindMessageTypeByName(full_name) != nullptr;
	} catch (...) {
		return false;
	}
}

extern "C" int spawn_pbjson_to_json(spawn_pbjson *p, const char *full_name, const uint8_t *bin,
                                    size_t len, int options, char **json, size_t *json_len,
                                    char *err, size_t errlen)
{
	try {
		Lock lock(&p->mu, false);
		const pb::Descriptor *d = find_type(p, full_name, err, errlen);
		if (!d)
			return SPAWN_PBJSON_ENOTYPE;
		// The JSON writer stops quietly at a truncated field: parse first,
		// so bytes that are not a whole message are an error, not half an
		// answer.
		std::unique_ptr<pb::Message> m(p->factory.GetPrototype(d)->New());
		if (len > INT32_MAX || !m->ParseFromArray(bin, (int)len)) {
			set_err(err, errlen,
			        std::string("the bytes are not a serialized ") + full_name);
			return SPAWN_PBJSON_EINVAL;
		}
		pb::util::JsonPrintOptions o;
		o.add_whitespace = options & SPAWN_PBJSON_PRETTY;
		o.always_print_primitive_fields = options & SPAWN_PBJSON_DEFAULTS;
		o.preserve_proto_field_names = options & SPAWN_PBJSON_PROTO_NAMES;
		std::string out;
		pb::util::Status st = pb::util::BinaryToJsonString(
		    p->resolver.get(), std::string(kUrlPrefix) + "/" + full_name,
		    std::string(reinterpret_cast<const char *>(bin), len), &out, o);
		if (!st.ok()) {
			set_err(err, errlen, std::string(st.message()));
			return SPAWN_PBJSON_EINVAL;
		}
		return copy_text(out, json, json_len);
	} catch (const std::bad_alloc &) {
		return SPAWN_PBJSON_ENOMEM;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		return SPAWN_PBJSON_EINVAL;
	}
}

extern "C" int spawn_pbjson_from_json(spawn_pbjson *p, const char *full_name, const char *json,
                                      size_t len, uint8_t **bin, size_t *bin_len, char *err,
                                      size_t errlen)
{
	try {
		Lock lock(&p->mu, false);
		if (!find_type(p, full_name, err, errlen))
			return SPAWN_PBJSON_ENOTYPE;
		if (too_deep(json, len)) {
			set_err(err, errlen,
			        "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
			return SPAWN_PBJSON_EINVAL;
		}
		pb::util::JsonParseOptions o;
		o.ignore_unknown_fields = false;
		std::string out;
		pb::util::Status st = pb::util::JsonToBinaryString(
		    p->resolver.get(), std::string(kUrlPrefix) + "/" + full_name,
		    std::string(json, len), &out, o);
		if (!st.ok()) {
			set_err(err, errlen, std::string(st.message()));
			return SPAWN_PBJSON_EINVAL;
		}
		return copy_bin(out, bin, bin_len);
	} catch (const std::bad_alloc &) {
		return SPAWN_PBJSON_ENOMEM;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		return SPAWN_PBJSON_EINVAL;
	}
}

namespace
{
// field_named finds d's field called name: its .proto name or JSON name.
const pb::FieldDescriptor *field_named(const pb::Descriptor *d, const std::string &name)
{
	const pb::FieldDescriptor *f = d->FindFieldByName(name);
	for (int i = 0; !f && i < d->field_count(); i++)
		if (d->field(i)->json_name() == name)
			f = d->field(i);
	return f;
}

// set_scalar sets (or, repeated, adds) field f of m from text. Returns an
// empty string, or why it does not fit.
std::string set_scalar(pb::Message *m, const pb::FieldDescriptor *f, const std::string &text)
{
	const pb::Reflection *r = m->GetReflection();
	const bool rep = f->is_repeated();
	const char *s = text.c_str();
	char *end = nullptr;
	errno = 0;
	switch (f->cpp_type()) {
	case pb::FieldDescriptor::CPPTYPE_STRING:
		if (f->type() == pb::FieldDescriptor::TYPE_STRING &&
		    !pb::internal::WireFormatLite::VerifyUtf8String(
		        text.data(), (int)text.size(), pb::internal::WireFormatLite::PARSE,
		        f->full_name().c_str()))
			return "is not valid UTF-8";
		rep ? r->AddString(m, f, text) : r->SetString(m, f, text);
		return "";
	case pb::FieldDescriptor::CPPTYPE_BOOL:
		if (text != "true" && text != "false")
			return "is not true or false";
		rep ? r->AddBool(m, f, text == "true") : r->SetBool(m, f, text == "true");
		return "";
	case pb::FieldDescriptor::CPPTYPE_INT32:
	case pb::FieldDescriptor::CPPTYPE_INT64: {
		long long v = std::strtoll(s, &end, 10);
		bool is32 = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32;
		if (!s[0] || *end || errno || (is32 && (v < INT32_MIN || v > INT32_MAX)))
			return is32 ? "is not an int32" : "is not an int64";
		if (is32)
			rep ? r->AddInt32(m, f, (int32_t)v) : r->SetInt32(m, f, (int32_t)v);
		else
			rep ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
		return "";
	}
	case pb::FieldDescriptor::CPPTYPE_UINT32:
	case pb::FieldDescriptor::CPPTYPE_UINT64: {
		unsigned long long v = std::strtoull(s, &end, 10);
		bool is32 = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32;
		if (!s[0] || s[0] == '-' || *end || errno || (is32 && v > UINT32_MAX))
			return is32 ? "is not a uint32" : "is not a uint64";
		if (is32)
			rep ? r->AddUInt32(m, f, (uint32_t)v) : r->SetUInt32(m, f, (uint32_t)v);
		else
			rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
		return "";
	}
	case pb::FieldDescriptor::CPPTYPE_FLOAT:
	case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
		double v = std::strtod(s, &end);
		if (!s[0] || *end || errno)
			return "is not a number";
		if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT)
			rep ? r->AddFloat(m, f, (float)v) : r->SetFloat(m, f, (float)v);
		else
			rep ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
		return "";
	}
	case pb::FieldDescriptor::CPPTYPE_ENUM: {
		const pb::EnumValueDescriptor *e = f->enum_type()->FindValueByName(text);
		if (!e) {
			long long v = std::strtoll(s, &end, 10);
			if (!s[0] || *end || errno || v < INT32_MIN || v > INT32_MAX)
				return "is no value of " + f->enum_type()->full_name();
			rep ? r->AddEnumValue(m, f, (int)v) : r->SetEnumValue(m, f, (int)v);
			return "";
		}
		rep ? r->AddEnum(m, f, e) : r->SetEnum(m, f, e);
		return "";
	}
	case pb::FieldDescriptor::CPPTYPE_MESSAGE:
		break;
	}
	return "is a message: set it in the body";
}
} // namespace

extern "C" int spawn_pbjson_from_http(spawn_pbjson *p, const char *full_name,
                                      const char *body_field, const char *json, size_t len,
                                      const char *const *names, const char *const *values, size_t n,
                                      uint8_t **bin, size_t *bin_len, char *err, size_t errlen)
{
	try {
		Lock lock(&p->mu, false);
		const pb::Descriptor *d = find_type(p, full_name, err, errlen);
		if (!d)
			return SPAWN_PBJSON_ENOTYPE;
		std::unique_ptr<pb::Message> m(p->factory.GetPrototype(d)->New());
		const bool whole = body_field && !std::strcmp(body_field, "*");
		const pb::FieldDescriptor *bf = nullptr;
		if (body_field && body_field[0] && !whole && !(bf = field_named(d, body_field))) {
			set_err(err, errlen,
			        std::string("the rule's body field '") + body_field +
			            "' is not in " + full_name);
			return SPAWN_PBJSON_EINVAL;
		}
		if (!whole && !bf) {
			for (size_t i = 0; i < len; i++)
				if (!std::isspace((unsigned char)json[i])) {
					set_err(err, errlen, "this route takes no body");
					return SPAWN_PBJSON_EINVAL;
				}
		} else if (len) {
			if (too_deep(json, len)) {
				set_err(err, errlen,
				        "JSON nested deeper than " + std::to_string(kMaxDepth) +
				            " levels");
				return SPAWN_PBJSON_EINVAL;
			}
			// A body field's value is parsed as the message with only that
			// field: {"<its JSON name>": BODY}. The name is an identifier
			// (the descriptors were checked), the body is the client's
			// JSON, parsed by libprotobuf like any other.
			std::string text = whole ? std::string(json, len)
			                         : "{\"" + bf->json_name() +
			                               "\":" + std::string(json, len) + "\n}";
			pb::util::JsonParseOptions o;
			o.ignore_unknown_fields = false;
			std::string out;
			pb::util::Status st = pb::util::JsonToBinaryString(
			    p->resolver.get(), std::string(kUrlPrefix) + "/" + full_name, text,
			    &out, o);
			if (!st.ok()) {
				set_err(err, errlen, std::string(st.message()));
				return SPAWN_PBJSON_EINVAL;
			}
			if (!m->ParseFromString(out)) {
				set_err(err, errlen, "the body does not make a valid message");
				return SPAWN_PBJSON_EINVAL;
			}
		}
		for (size_t i = 0; i < n; i++) {
			// Walk "a.b.c": every part but the last a singular message.
			std::string path = names[i];
			pb::Message *at = m.get();
			const pb::FieldDescriptor *f = nullptr;
			size_t start = 0;
			std::string why;
			for (;;) {
				size_t dot = path.find('.', start);
				std::string part =
				    path.substr(start, dot == std::string::npos ? std::string::npos
				                                                : dot - start);
				f = field_named(at->GetDescriptor(), part);
				if (!f) {
					why =
					    "is not a field of " + at->GetDescriptor()->full_name();
					break;
				}
				if (dot == std::string::npos)
					break;
				if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE ||
				    f->is_repeated()) {
					why = "goes through '" + part + "', which is not a message";
					f = nullptr;
					break;
				}
				at = at->GetReflection()->MutableMessage(at, f, &p->factory);
				start = dot + 1;
			}
			if (f)
				why = set_scalar(at, f, values[i]);
			if (!why.empty()) {
				set_err(err, errlen, "parameter '" + path + "' " + why);
				return SPAWN_PBJSON_EINVAL;
			}
		}
		std::string out;
		if (!m->SerializeToString(&out))
			return SPAWN_PBJSON_ENOMEM;
		return copy_bin(out, bin, bin_len);
	} catch (const std::bad_alloc &) {
		return SPAWN_PBJSON_ENOMEM;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		return SPAWN_PBJSON_EINVAL;
	}
}

extern "C" int spawn_pbjson_status_json(int code, const char *message, char **json,
                                        size_t *json_len)
{
	try {
		// google.rpc.Status without details, described here (its two
		// fields, same names and numbers) so that the fields print in
		// their order: a Struct's would not.
		struct StatusType {
			pb::DescriptorPool pool;
			pb::DynamicMessageFactory factory{&pool};
			const pb::Descriptor *d = nullptr;
			StatusType()
			{
				pb::FileDescriptorProto f;
				f.set_name("spawn/pbjson/status.proto");
				f.set_package("google.rpc");
				f.set_syntax("proto3");
				pb::DescriptorProto *m = f.add_message_type();
				m->set_name("Status");
				pb::FieldDescriptorProto *c = m->add_field();
				c->set_name("code");
				c->set_number(1);
				c->set_type(pb::FieldDescriptorProto::TYPE_INT32);
				c->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
				pb::FieldDescriptorProto *s = m->add_field();
				s->set_name("message");
				s->set_number(2);
				s->set_type(pb::FieldDescriptorProto::TYPE_STRING);
				s->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
				if (pool.BuildFile(f))
					d = pool.FindMessageTypeByName("google.rpc.Status");
			}
		};
		static const StatusType type; // immutable once built (thread-safe init)
		if (!type.d)
			return SPAWN_PBJSON_EINVAL;
		std::unique_ptr<pb::Message> st(
		    const_cast<pb::DynamicMessageFactory &>(type.factory)
		        .GetPrototype(type.d)
		        ->New());
		const pb::Reflection *r = st->GetReflection();
		r->SetInt32(st.get(), type.d->field(0), code);
		r->SetString(st.get(), type.d->field(1), message ? message : "");
		std::string out;
		pb::util::JsonPrintOptions o;
		o.always_print_primitive_fields = true;
		if (!pb::util::MessageToJsonString(*st, &out, o).ok())
			return SPAWN_PBJSON_EINVAL;
		return copy_text(out, json, json_len);
	} catch (const std::bad_alloc &) {
		return SPAWN_PBJSON_ENOMEM;
	} catch (...) {
		return SPAWN_PBJSON_EINVAL;
	}
}
