// goleveldb-dump opens a LevelDB folder with goleveldb — the library the
// original minikeyvalue master uses — and prints every record as a JSON
// object, so the tests can check that the original can read our index.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/syndtr/goleveldb/leveldb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: goleveldb-dump DIR")
		os.Exit(2)
	}
	db, err := leveldb.OpenFile(os.Args[1], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	defer db.Close()
	records := map[string]string{}
	iter := db.NewIterator(nil, nil)
	for iter.Next() {
		records[string(iter.Key())] = string(iter.Value())
	}
	iter.Release()
	if err := iter.Error(); err != nil {
		fmt.Fprintln(os.Stderr, "iterate:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(records)
	fmt.Println(string(out))
}
