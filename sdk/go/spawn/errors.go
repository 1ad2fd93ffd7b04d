package spawn

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call or action: a gRPC status code and a message.
//
// A handler returns it (Errorf) to fail its invocation with that code; the
// caller gets exactly code and message (except UNAUTHENTICATED and
// PERMISSION_DENIED, which the gateway turns into UNKNOWN with a prefix,
// docs/protocol.md). A client's calls fail with it.
type Error struct {
	Code    codes.Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", CodeName(e.Code), e.Message) }

var codeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// CodeName is the canonical name of a gRPC code ("NOT_FOUND"), as the
// other runtimes and the gateway's docs write it.
func CodeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("CODE(%d)", uint32(c))
}

// GRPCStatus makes status.Code and status.Convert understand it.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Errorf makes an *Error with code and a formatted message.
func Errorf(code codes.Code, format string, args ...interface{}) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Code is the gRPC code of err: an *Error's, a gRPC status's, OK for nil,
// UNKNOWN otherwise.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// asError turns err into an *Error (a gRPC status keeps its code and message).
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if st, ok := status.FromError(err); ok {
		return &Error{Code: st.Code(), Message: st.Message()}
	}
	return &Error{Code: codes.Unknown, Message: err.Error()}
}
