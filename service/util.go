package service

import (
	"sort"

	"github.com/paxosd/paxosd/paxos"
)

func sortNodeIDs(ids []paxos.NodeID) {
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
}
