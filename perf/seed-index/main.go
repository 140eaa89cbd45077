// seed-index writes an index of N keys `/bench/k0000000`... with goleveldb,
// as the original master would after N PUTs of 1 KiB values, plus the `o`
// metadata records mkv keeps beside them, so both masters can list the same
// index. Built with Debian's Go and goleveldb packages (see perf/bench.py).
package main

import (
	"crypto/md5"
	"fmt"
	"os"
	"strconv"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: seed-index DIR COUNT VOLUMES")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "COUNT:", err)
		os.Exit(2)
	}
	db, err := leveldb.OpenFile(os.Args[1], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	defer db.Close()
	batch := new(leveldb.Batch)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("/bench/k%07d", i)
		hash := fmt.Sprintf("%x", md5.Sum([]byte(key)))
		batch.Put([]byte(key), []byte("HASH"+hash+os.Args[3]))
		meta := fmt.Sprintf(`{"s":1024,"t":1764763200000,"e":"%s","h":"%s"}`, hash, hash)
		batch.Put([]byte("o"+key), []byte(meta))
		if batch.Len() >= 20000 {
			if err := db.Write(batch, nil); err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				os.Exit(1)
			}
			batch.Reset()
		}
	}
	if err := db.Write(batch, nil); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(1)
	}
	if err := db.CompactRange(util.Range{}); err != nil {
		fmt.Fprintln(os.Stderr, "compact:", err)
		os.Exit(1)
	}
}
