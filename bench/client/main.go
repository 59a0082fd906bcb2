// netd-bench-client: the bench's gRPC client for netd, in Go with grpc-go,
// as the container runtimes that call netd are (containerd, CRI-O, Podman).
//
// Usage: netd-bench-client SOCKET IN:OUT... One connection, shared by one
// goroutine per IN:OUT pair of file descriptors, as a runtime's concurrent
// calls share its connection. Each reads requests from IN, one per line:
//
//	attach CONTAINER_ID PID
//	detach CONTAINER_ID
//	list
//
// makes the call itself and answers on OUT with "ok MICROSECONDS" or
// "error CODE MESSAGE". Only the RPC is timed, not the pipe from the bench.
// A pipe per caller rather than one shared pipe: handing each request from a
// reader goroutine to another woke a second thread per call and added
// ~0.25 ms.
//
// Requests are encoded by hand and answers are not decoded: with three
// messages of one or two fields, that is simpler than generating Go code,
// whose plugin Debian 12 does not package for this grpc-go.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends and receives message bytes as they are; it takes the
// "proto" name so the content type is the one netd expects.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// request: the method and the encoded message for one line's words.
func request(words []string) (string, []byte, error) {
	var msg []byte
	switch {
	case words[0] == "attach" && len(words) == 3:
		pid, err := strconv.Atoi(words[2])
		if err != nil {
			return "", nil, err
		}
		msg = protowire.AppendTag(msg, 1, protowire.BytesType) // container_id
		msg = protowire.AppendString(msg, words[1])
		msg = protowire.AppendTag(msg, 2, protowire.VarintType) // pid
		msg = protowire.AppendVarint(msg, uint64(pid))
		return "/netd.v1.Netd/AttachContainer", msg, nil
	case words[0] == "detach" && len(words) == 2:
		msg = protowire.AppendTag(msg, 1, protowire.BytesType) // container_id
		msg = protowire.AppendString(msg, words[1])
		return "/netd.v1.Netd/DetachContainer", msg, nil
	case words[0] == "list" && len(words) == 1:
		return "/netd.v1.Netd/ListEndpoints", msg, nil
	}
	return "", nil, fmt.Errorf("unknown request %q", strings.Join(words, " "))
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: netd-bench-client SOCKET IN:OUT...")
		os.Exit(2)
	}
	encoding.RegisterCodec(rawCodec{})
	socket := os.Args[1]
	conn, err := grpc.Dial("passthrough:///netd", grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	var done sync.WaitGroup
	for _, pair := range os.Args[2:] {
		var in, out uintptr
		if _, err := fmt.Sscanf(pair, "%d:%d", &in, &out); err != nil {
			fmt.Fprintf(os.Stderr, "bad IN:OUT %q\n", pair)
			os.Exit(2)
		}
		done.Add(1)
		go func() {
			defer done.Done()
			requests := bufio.NewScanner(os.NewFile(in, "requests"))
			answers := bufio.NewWriter(os.NewFile(out, "answers"))
			for requests.Scan() {
				fmt.Fprintln(answers, call(conn, strings.Fields(requests.Text())))
				answers.Flush()
			}
		}()
	}
	done.Wait()
}

// call: the answer line for one request.
func call(conn *grpc.ClientConn, words []string) string {
	if len(words) == 0 {
		return "error InvalidArgument empty request"
	}
	method, msg, err := request(words)
	if err != nil {
		return "error InvalidArgument " + err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var reply []byte
	started := time.Now()
	err = conn.Invoke(ctx, method, &msg, &reply)
	took := time.Since(started)
	if err != nil {
		s := status.Convert(err)
		return fmt.Sprintf("error %s %s", s.Code(), strings.ReplaceAll(s.Message(), "\n", " "))
	}
	return fmt.Sprintf("ok %d", took.Microseconds())
}
