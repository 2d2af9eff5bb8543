package sim_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sim"
)

func TestGenerateIdentity(t *testing.T) {
	var (
		pass15  = regexp.MustCompile(`^[A-Z]{3}\d{12}$`)
		passJ   = regexp.MustCompile(`^([HM]\d{8}|\d{8})$`)
		alpha3  = regexp.MustCompile(`^[A-Z]{3}$`)
		ref     = sim.RefDate.Format("20060102")
		longs   int
		nations = map[string]int{}
	)
	for _, ct := range cardTypes {
		for seed := uint64(0); seed < 500; seed++ {
			id := sim.GenerateIdentity(rand.New(rand.NewPCG(seed, 1)), ct)
			if id != sim.GenerateIdentity(rand.New(rand.NewPCG(seed, 1)), ct) {
				t.Fatalf("%v seed %d: not deterministic", ct, seed)
			}
			text, err := ga467.EncodeText(&id)
			if err != nil {
				t.Fatalf("%v seed %d: EncodeText: %v", ct, seed, err)
			}
			back, err := ga467.DecodeText(text)
			if err != nil || *back != id {
				t.Fatalf("%v seed %d: text round trip: %v", ct, seed, err)
			}
			if id.Type != ct || id.Name == "" || (id.Sex != "1" && id.Sex != "2") {
				t.Errorf("%v seed %d: type/name/sex", ct, seed)
			}
			if id.ValidTo != ga467.LongTerm && id.ValidTo <= ref {
				t.Errorf("%v seed %d: expired on %s", ct, seed, ref)
			}
			if id.ValidFrom > ref || id.ValidFrom <= id.Birth {
				t.Errorf("%v seed %d: issued outside birth..%s", ct, seed, ref)
			}
			switch ct {
			case ga467.Resident, ga467.HKMacaoTaiwan, ga467.ForeignPerm2023:
				if err := ga467.ValidIDNumber(id.Number); err != nil {
					t.Errorf("%v seed %d: ID number: %v", ct, seed, err)
				}
				if ct != ga467.ForeignPerm2023 && id.Number[6:14] != id.Birth {
					t.Errorf("%v seed %d: number does not hold the birth date", ct, seed)
				}
				if odd := (id.Number[16]-'0')%2 == 1; odd != (id.Sex == "1") {
					t.Errorf("%v seed %d: sequence parity does not match sex", ct, seed)
				}
			}
			switch ct {
			case ga467.Resident:
				nations[id.Nation]++
				if !strings.HasSuffix(id.Authority, "分局") || !strings.Contains(id.Authority, "市公安局") {
					t.Errorf("seed %d: authority %q", seed, id.Authority)
				}
				if id.ValidTo == ga467.LongTerm {
					longs++
				} else {
					from, _ := time.Parse("20060102", id.ValidFrom)
					to, _ := time.Parse("20060102", id.ValidTo)
					if y := to.Year() - from.Year(); y != 5 && y != 10 && y != 20 {
						t.Errorf("seed %d: validity of %d years", seed, y)
					}
				}
			case ga467.HKMacaoTaiwan:
				if !passJ.MatchString(id.PassNumber) || !strings.HasPrefix(id.Number, "8") {
					t.Errorf("seed %d: J permit numbers", seed)
				}
			case ga467.ForeignPerm:
				if !pass15.MatchString(id.Number) || !alpha3.MatchString(id.Nationality) || id.Number[:3] != id.Nationality || id.EnglishName == "" {
					t.Errorf("seed %d: I card numbers", seed)
				}
			case ga467.ForeignPerm2023:
				if id.Number[0] != '9' || !alpha3.MatchString(id.Nationality) || id.EnglishName == "" {
					t.Errorf("seed %d: Y card numbers", seed)
				}
			}
		}
	}
	if longs == 0 || nations["01"] < 300 || len(nations) < 3 {
		t.Errorf("implausible spread: %d long-term, nations %v", longs, nations)
	}
}

func TestNewCardDeterministic(t *testing.T) {
	a, b := sim.NewCard(42, sim.CardOptions{}), sim.NewCard(42, sim.CardOptions{})
	if a.Serial() != b.Serial() || a.Identity() != b.Identity() {
		t.Error("same seed, different cards")
	}
	if c := sim.NewCard(43, sim.CardOptions{}); c.Serial() == a.Serial() {
		t.Error("different seeds, same serial")
	}
}
